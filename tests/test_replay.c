/*
 * posternd's replay state across restarts and its log throttle: the text
 * form read and written, every way a state file can be bad, a restart that
 * keeps refusing a captured knock, a failed save that leaves no stale file,
 * and one log line a minute.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "test_util.h"

#include "keys.h"
#include "knock_verify.h"
#include "log_throttle.h"
#include "replay_file.h"

#define NOW 1800000000000ull
#define BOOT 7000000ull
#define WINDOW_MS 30000ull

static struct noise_keypair server, alice, bob;
static uint8_t psk[KEY_LEN];
static struct client_entry clients[2];
static uint16_t ports[] = { 22 };
static struct server_config cfg;

static int setup(void **state)
{
	(void)state;
	test_keypair(&server);
	test_keypair(&alice);
	test_keypair(&bob);
	random_bytes(psk, KEY_LEN);
	clients[0] = (struct client_entry){ .name = "alice", .open = ports, .n_open = 1 };
	clients[1] = (struct client_entry){ .name = "bob", .open = ports, .n_open = 1 };
	memcpy(clients[0].public_key, alice.pub, KEY_LEN);
	memcpy(clients[1].public_key, bob.pub, KEY_LEN);
	cfg.clients = clients;
	cfg.n_clients = 2;
	cfg.knock = (struct knock_config){ .window = 30, .open_seconds = 30,
					   .max_open_seconds = 300, .rate = 2,
					   .burst = 10, .rate_sources = 64,
					   .replay_entries = 4 };
	return 0;
}

/* The header files are written with, and one they are read into. */
static const struct replay_header hdr = { .window_s = 30 };
static struct replay_header got;

static void id_of(uint8_t id[REPLAY_ID_LEN], int n)
{
	memset(id, 0, REPLAY_ID_LEN);
	id[0] = (uint8_t)n;
	id[15] = 0xee;
}

static void round_trip(void **state)
{
	struct replay_table t, u;
	uint8_t id[REPLAY_ID_LEN];
	char *buf = NULL, err[256];
	size_t len = 0;
	FILE *mem;

	(void)state;
	assert_true(replay_init(&t, &cfg, 4));
	for (int i = 0; i < 6; i++) {	/* two pushed out: floor NOW + 1 */
		id_of(id, i);
		assert_true(replay_accept(&t, 0, NOW + (uint64_t)i, id, BOOT, WINDOW_MS));
	}
	assert_int_equal(t.keys[0].floor_ms, NOW + 1);
	mem = open_memstream(&buf, &len);
	assert_true(replay_write(&t, &hdr, mem));
	fclose(mem);
	/* bob has no history: one key line */
	assert_non_null(strstr(buf, "end 1\n"));

	assert_true(replay_init(&u, &cfg, 4));
	mem = fmemopen(buf, len, "r");
	assert_true(replay_parse(&u, mem, BOOT, &got, err, sizeof(err)));
	fclose(mem);
	assert_int_equal(u.keys[0].floor_ms, NOW + 1);
	assert_int_equal(u.keys[0].n_seen, 4);
	assert_int_equal(replay_last(&u, 0), NOW + 5);
	for (int i = 0; i < 6; i++) {
		id_of(id, i);
		assert_false(replay_accept(&u, 0, NOW + (uint64_t)i, id, BOOT, WINDOW_MS));
	}
	id_of(id, 9);
	assert_true(replay_accept(&u, 0, NOW + 2, id, BOOT, WINDOW_MS));
	free(buf);
	replay_free(&t);
	replay_free(&u);
}

/* Each of these is refused as a whole; the table keeps no part of it. */
static void corrupt_files(void **state)
{
	char key[KEY_B64_LEN + 1], good[512], bad[1024], err[256];
	const char *id = "000102030405060708090a0b0c0d0e0f";
	struct replay_table t;
	FILE *mem;

	(void)state;
	key_to_base64(key, alice.pub);
	snprintf(good, sizeof(good), "postern-knock-state 1\n%s 5 10:%s\nend 1\n",
		 key, id);
	assert_true(replay_init(&t, &cfg, 4));
	mem = fmemopen(good, strlen(good), "r");
	assert_true(replay_parse(&t, mem, BOOT, &got, err, sizeof(err)));
	fclose(mem);
	replay_free(&t);

	const char *const cases[] = {
		"",						/* empty */
		"postern-knock-state 2\nend 0\n",		/* another version */
		"postern-knock-state 1\n",			/* cut before end */
		"postern-knock-state 1\n%s 5 10:%s\nend 2\n",	/* wrong count */
		"postern-knock-state 1\n%s 5 10:%s\nend 1",	/* no newline */
		"postern-knock-state 1\n%s 5 10:%s\nend 1\nx\n", /* after end */
		"postern-knock-state 1\n%s 10 10:%s\nend 1\n",	/* at the floor */
		"postern-knock-state 1\n%s 5 10:%.31s\nend 1\n",	/* short id */
		"postern-knock-state 1\n%s 5 10:%sZ\nend 1\n",	/* junk after */
		"postern-knock-state 1\n%s -5 10:%s\nend 1\n",	/* signed */
		"postern-knock-state 1\n%s 5 99999999999999999999:%s\nend 1\n",
		"postern-knock-state 1\n%s 5  10:%s\nend 1\n",	/* two blanks */
		"postern-knock-state 1\nAAAA 5 10:%s\nend 1\n",	/* not a key */
	};
	/* the cases are formats: the key and the id go in */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (strstr(cases[i], "AAAA"))
			snprintf(bad, sizeof(bad), cases[i], id);
		else
			snprintf(bad, sizeof(bad), cases[i], key, id);
#pragma GCC diagnostic pop
		assert_true(replay_init(&t, &cfg, 4));
		mem = fmemopen(bad, strlen(bad) ? strlen(bad) : 1, "r");
		if (!strlen(bad))
			fgetc(mem);	/* an empty stream */
		assert_false(replay_parse(&t, mem, BOOT, &got, err, sizeof(err)));
		assert_non_null(strstr(err, ": "));
		fclose(mem);
		replay_free(&t);
	}
}

static void make(uint8_t pkt[KNOCK_LEN], uint64_t ts)
{
	struct knock_payload p = { .timestamp_ms = ts };

	assert_true(knock_build(pkt, &alice, server.pub, psk, &p));
}

static struct knock_packet packet(const uint8_t data[KNOCK_LEN])
{
	struct knock_packet k = { .len = KNOCK_LEN, .captured = KNOCK_LEN };

	assert_true(addr_from_text(k.src.b, "192.0.2.1"));
	memcpy(k.data, data, KNOCK_LEN);
	return k;
}

/*
 * The review's case: a knock timestamped 20 s ahead of the server's clock
 * is accepted; posternd restarts 5 s later. Without the state file the
 * start floor alone lets its replay in; with it, it stays refused, and an
 * honest new knock still opens.
 */
static void restart_keeps_refusing(void **state)
{
	char err[256], path[512];
	struct knock_verifier v;
	struct knock_decision d;
	struct replay_file *f;
	struct knock_clock t = { NOW, BOOT };
	struct knock_packet k;
	uint8_t ahead[KNOCK_LEN], fresh[KNOCK_LEN];

	(void)state;
	snprintf(path, sizeof(path), "%s/knock.state", temp_dir_path());
	f = replay_file_open(path, err, sizeof(err));
	assert_non_null(f);
	assert_true(knock_verifier_init(&v, &server, psk, &cfg, &t));
	assert_int_equal(replay_file_load(f, &v.replay, BOOT, &got, err, sizeof(err)),
			 REPLAY_MISSING);
	t.wall_ms += 100000;	/* up for 100 s */
	t.boot_ms += 100000;
	make(ahead, t.wall_ms + 20000);
	k = packet(ahead);
	assert_int_equal(knock_verify(&v, &k, &t, &d), KNOCK_OK);
	assert_true(replay_file_record(f, &v.replay, &hdr, err, sizeof(err)));
	replay_file_sync(f);
	assert_int_equal(v.replay.n_fresh, 0);
	knock_verifier_free(&v);

	/* the restart, 5 s later */
	t.wall_ms += 5000;
	t.boot_ms += 5000;
	assert_true(knock_verifier_init(&v, &server, psk, &cfg, &t));
	assert_int_equal(knock_verify(&v, &k, &t, &d), KNOCK_OK);	/* no file */
	knock_verifier_free(&v);
	assert_true(knock_verifier_init(&v, &server, psk, &cfg, &t));
	if (replay_file_load(f, &v.replay, t.boot_ms, &got, err, sizeof(err)) != REPLAY_LOADED)
		fail_msg("%s", err);
	v.history = true;
	assert_int_equal(knock_verify(&v, &k, &t, &d), KNOCK_REPLAY);
	make(fresh, t.wall_ms);
	k = packet(fresh);
	assert_int_equal(knock_verify(&v, &k, &t, &d), KNOCK_OK);
	knock_verifier_free(&v);
	replay_file_close(f);
}

/* A write that fails removes the old file: a restart then falls back to
 * the start floor instead of trusting stale state. */
static void failed_save_removes_stale_state(void **state)
{
	char err[256], path[512], tmp[512];
	struct replay_table t;
	struct replay_file *f;
	struct stat st;
	uint8_t id[REPLAY_ID_LEN];

	(void)state;
	snprintf(path, sizeof(path), "%s/stale.state", temp_dir_path());
	snprintf(tmp, sizeof(tmp), "%s/.stale.state.new", temp_dir_path());
	f = replay_file_open(path, err, sizeof(err));
	assert_non_null(f);
	assert_true(replay_init(&t, &cfg, 4));
	id_of(id, 1);
	assert_true(replay_accept(&t, 0, NOW, id, BOOT, WINDOW_MS));
	assert_true(replay_file_record(f, &t, &hdr, err, sizeof(err)));
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* a directory where the new file must go: writing it whole fails */
	assert_int_equal(mkdir(tmp, 0700), 0);
	id_of(id, 2);
	assert_true(replay_accept(&t, 0, NOW + 1, id, BOOT, WINDOW_MS));
	t.overflow = true;
	assert_false(replay_file_record(f, &t, &hdr, err, sizeof(err)));
	assert_non_null(strstr(err, path));
	assert_int_equal(stat(path, &st), -1);
	rmdir(tmp);
	/* the next record writes it whole again */
	assert_true(replay_file_record(f, &t, &hdr, err, sizeof(err)));
	assert_int_equal(stat(path, &st), 0);
	replay_file_close(f);
	replay_free(&t);
}

/* Knocks accepted after the file was written go to its journal, one
 * line each; a load reads both; a last line a crash cut is ignored, any
 * other bad line makes the file corrupt; a long journal is folded in. */
static void journal(void **state)
{
	char err[256], path[512], key[KEY_B64_LEN + 1];
	struct replay_table t, u;
	struct replay_file *f;
	uint8_t id[REPLAY_ID_LEN];
	struct stat st;
	FILE *out;

	(void)state;
	snprintf(path, sizeof(path), "%s/journal.state", temp_dir_path());
	f = replay_file_open(path, err, sizeof(err));
	assert_non_null(f);
	assert_true(replay_init(&t, &cfg, 64));
	assert_true(replay_file_rewrite(f, &t, &hdr, err, sizeof(err)));
	for (int i = 0; i < 3; i++) {
		id_of(id, i);
		assert_true(replay_accept(&t, 1, NOW + (uint64_t)i, id, BOOT, WINDOW_MS));
	}
	assert_true(replay_file_record(f, &t, &hdr, err, sizeof(err)));
	replay_file_sync(f);
	assert_true(replay_init(&u, &cfg, 64));
	assert_int_equal(replay_file_load(f, &u, BOOT, &got, err, sizeof(err)), REPLAY_LOADED);
	assert_int_equal(u.keys[1].n_seen, 3);
	replay_free(&u);

	/* cut short by a crash: ignored */
	key_to_base64(key, bob.pub);
	out = fopen(path, "a");
	fprintf(out, "+ %s 1800000000099:0011", key);
	fclose(out);
	assert_true(replay_init(&u, &cfg, 64));
	assert_int_equal(replay_file_load(f, &u, BOOT, &got, err, sizeof(err)), REPLAY_LOADED);
	assert_int_equal(u.keys[1].n_seen, 3);
	replay_free(&u);
	/* a whole line that is no journal line: corrupt */
	out = fopen(path, "a");
	fprintf(out, "\n+ junk\n");
	fclose(out);
	assert_true(replay_init(&u, &cfg, 64));
	assert_int_equal(replay_file_load(f, &u, BOOT, &got, err, sizeof(err)), REPLAY_CORRUPT);
	assert_int_equal(u.keys[1].n_seen, 0);
	replay_free(&u);

	/* 4,100 knocks later the journal is folded into the file */
	assert_true(replay_file_rewrite(f, &t, &hdr, err, sizeof(err)));
	for (int i = 0; i < 4100; i++) {
		id_of(id, i % 200);
		id[1] = (uint8_t)(i >> 8);
		assert_true(replay_accept(&t, 0, NOW + 10 + (uint64_t)i, id, BOOT, WINDOW_MS));
		if (t.n_fresh == REPLAY_FRESH_MAX)
			assert_true(replay_file_record(f, &t, &hdr, err, sizeof(err)));
	}
	assert_true(replay_file_record(f, &t, &hdr, err, sizeof(err)));
	assert_int_equal(stat(path, &st), 0);
	assert_true(st.st_size > 4096 * 60);
	assert_true(replay_file_compact(f, &t, &hdr, err, sizeof(err)));
	assert_int_equal(stat(path, &st), 0);
	assert_true(st.st_size < 8192);		/* two keys' lines */
	assert_true(replay_init(&u, &cfg, 64));
	assert_int_equal(replay_file_load(f, &u, BOOT, &got, err, sizeof(err)), REPLAY_LOADED);
	assert_int_equal(u.keys[0].n_seen, 64);
	assert_int_equal(u.keys[0].floor_ms, t.keys[0].floor_ms);
	replay_free(&u);
	replay_file_close(f);
	replay_free(&t);
}

/*
 * Review F2: run 1 accepts K and its state is lost; run 2, starting
 * without it, refuses K by its start floor; its file must make run 3
 * refuse K too, not take run 2's empty history for the whole story.
 */
static void lost_state_is_not_forgotten_twice(void **state)
{
	char err[256], path[512];
	struct knock_verifier v;
	struct knock_decision d;
	struct replay_header h;
	struct replay_file *f;
	struct knock_clock t = { NOW, BOOT };
	struct knock_packet k;
	uint8_t captured[KNOCK_LEN], honest[KNOCK_LEN];

	(void)state;
	snprintf(path, sizeof(path), "%s/lost.state", temp_dir_path());
	f = replay_file_open(path, err, sizeof(err));
	assert_non_null(f);
	/* run 1, whose state is then lost */
	assert_true(knock_verifier_init(&v, &server, psk, &cfg, &t));
	make(captured, t.wall_ms + 20000);
	k = packet(captured);
	assert_int_equal(knock_verify(&v, &k, &t, &d), KNOCK_OK);
	knock_verifier_free(&v);
	/* run 2: no file; it writes one, with its start as a floor */
	t.wall_ms += 1000;
	t.boot_ms += 1000;
	assert_true(knock_verifier_init(&v, &server, psk, &cfg, &t));
	assert_int_equal(replay_file_load(f, &v.replay, t.boot_ms, &got, err, sizeof(err)),
			 REPLAY_MISSING);
	knock_verifier_file_header(&v, &t, &h);
	assert_int_equal(h.floor_wall_ms, t.wall_ms);
	assert_true(replay_file_rewrite(f, &v.replay, &h, err, sizeof(err)));
	knock_verifier_free(&v);
	/* run 3 loads run 2's file: an older knock of run 1's is refused */
	make(captured, t.wall_ms - 500);
	t.wall_ms += 1000;
	t.boot_ms += 1000;
	assert_true(knock_verifier_init(&v, &server, psk, &cfg, &t));
	assert_int_equal(replay_file_load(f, &v.replay, t.boot_ms, &got, err, sizeof(err)),
			 REPLAY_LOADED);
	v.history = true;
	knock_verifier_file_loaded(&v, &got, &t);
	k = packet(captured);
	assert_int_equal(knock_verify(&v, &k, &t, &d), KNOCK_REPLAY);
	make(honest, t.wall_ms);
	k = packet(honest);
	assert_int_equal(knock_verify(&v, &k, &t, &d), KNOCK_OK);
	/* two windows on, the floor is gone from the file it writes */
	t.wall_ms += 61000;
	t.boot_ms += 61000;
	knock_verifier_file_header(&v, &t, &h);
	assert_int_equal(h.floor_expires_ms, 0);
	knock_verifier_free(&v);
	replay_file_close(f);
}

/* Review F4, across a restart: a file written with a 30 s window, loaded
 * with a 300 s one, refuses what was forgotten under the old window. */
static void window_grown_across_restart(void **state)
{
	char err[256], path[512];
	struct server_config wide = cfg;
	struct knock_verifier v;
	struct knock_decision d;
	struct replay_header h;
	struct replay_file *f;
	struct knock_clock t = { NOW, BOOT };
	struct knock_packet k;
	uint8_t captured[KNOCK_LEN];

	(void)state;
	snprintf(path, sizeof(path), "%s/window.state", temp_dir_path());
	f = replay_file_open(path, err, sizeof(err));
	assert_non_null(f);
	assert_true(knock_verifier_init(&v, &server, psk, &cfg, &t));
	v.history = true;
	make(captured, t.wall_ms);
	k = packet(captured);
	assert_int_equal(knock_verify(&v, &k, &t, &d), KNOCK_OK);
	t.wall_ms += 62000;	/* forgotten: two windows of 30 s */
	t.boot_ms += 62000;
	knock_verifier_file_header(&v, &t, &h);
	assert_int_equal(h.window_s, 30);
	assert_true(replay_file_rewrite(f, &v.replay, &h, err, sizeof(err)));
	knock_verifier_free(&v);
	wide.knock.window = 300;
	assert_true(knock_verifier_init(&v, &server, psk, &wide, &t));
	assert_int_equal(replay_file_load(f, &v.replay, t.boot_ms, &got, err, sizeof(err)),
			 REPLAY_LOADED);
	v.history = true;
	knock_verifier_file_loaded(&v, &got, &t);
	assert_int_equal(knock_verify(&v, &k, &t, &d), KNOCK_REPLAY);
	knock_verifier_free(&v);
	replay_file_close(f);
}

/* Review F3: a key with replay_entries (1,024 at most) knocks fits a line
 * the loader takes. */
static void widest_line_loads(void **state)
{
	struct server_config many = cfg;
	struct replay_table t, u;
	uint8_t id[REPLAY_ID_LEN];
	char *buf = NULL, err[256];
	size_t len = 0;
	FILE *mem;

	(void)state;
	many.knock.replay_entries = 1024;
	assert_true(replay_init(&t, &many, 1024));
	for (int i = 0; i < 1024; i++) {
		memset(id, 0xab, sizeof(id));
		memcpy(id, &i, sizeof(i));
		assert_true(replay_accept(&t, 0, 18000000000000000000ull + (uint64_t)i,
					  id, BOOT, WINDOW_MS));
	}
	mem = open_memstream(&buf, &len);
	assert_true(replay_write(&t, &hdr, mem));
	fclose(mem);
	assert_true(len > 1024 * 50);
	assert_true(replay_init(&u, &many, 1024));
	mem = fmemopen(buf, len, "r");
	if (!replay_parse(&u, mem, BOOT, &got, err, sizeof(err)))
		fail_msg("%s", err);
	fclose(mem);
	assert_int_equal(u.keys[0].n_seen, 1024);
	free(buf);
	replay_free(&t);
	replay_free(&u);
}

/* Knocks are forgotten two windows (boot clock) after they were
 * accepted, whatever the wall clock does meanwhile. */
static void forgotten_after_two_windows(void **state)
{
	struct replay_table t;
	uint8_t id[REPLAY_ID_LEN];

	(void)state;
	assert_true(replay_init(&t, &cfg, 4));
	id_of(id, 1);
	assert_true(replay_accept(&t, 1, NOW, id, BOOT, WINDOW_MS));
	assert_false(replay_accept(&t, 1, NOW, id, BOOT + 2 * WINDOW_MS, WINDOW_MS));
	assert_int_equal(t.keys[1].n_seen, 1);
	assert_true(replay_accept(&t, 1, NOW, id, BOOT + 2 * WINDOW_MS + 1, WINDOW_MS));
	replay_free(&t);
}

static void log_once_a_minute(void **state)
{
	struct log_throttle t;
	uint64_t held = 99;

	(void)state;
	assert_true(log_throttle_init(&t, 3));
	assert_true(log_throttle_event(&t, 1, 1000, &held));
	assert_int_equal(held, 0);
	for (int i = 0; i < 99; i++)
		assert_false(log_throttle_event(&t, 1, 1000 + (uint64_t)i * 100, &held));
	assert_true(log_throttle_event(&t, 2, 1500, &held));	/* its own */
	assert_false(log_throttle_due(&t, 1, 1000 + LOG_THROTTLE_MS - 1, &held));
	assert_true(log_throttle_due(&t, 1, 1000 + LOG_THROTTLE_MS, &held));
	assert_int_equal(held, 99);
	assert_false(log_throttle_due(&t, 1, 1000 + 2 * LOG_THROTTLE_MS, &held));
	assert_false(log_throttle_event(&t, 1, 1000 + LOG_THROTTLE_MS + 1, &held));
	assert_true(log_throttle_event(&t, 1, 1000 + 2 * LOG_THROTTLE_MS + 1, &held));
	assert_int_equal(held, 1);
	log_throttle_free(&t);
}

/* Up to a burst of lines per interval; a summary starts a new one, and a
 * subject that goes takes what it holds at once. */
static void log_burst_a_minute(void **state)
{
	struct log_throttle t;
	uint64_t held = 99;

	(void)state;
	assert_true(log_throttle_init(&t, 2));
	for (int i = 0; i < 3; i++) {
		assert_true(log_throttle_burst(&t, 0, 1000 + (uint64_t)i, 3, &held));
		assert_int_equal(held, 0);
		assert_int_equal(log_throttle_spent(&t, 0, 3), i == 2);
	}
	for (int i = 0; i < 7; i++)
		assert_false(log_throttle_burst(&t, 0, 2000, 3, &held));
	assert_true(log_throttle_due(&t, 0, 1000 + LOG_THROTTLE_MS, &held));
	assert_int_equal(held, 7);
	/* The summary was the new interval's first line: two more. */
	assert_true(log_throttle_burst(&t, 0, 1000 + LOG_THROTTLE_MS + 1, 3, &held));
	assert_true(log_throttle_burst(&t, 0, 1000 + LOG_THROTTLE_MS + 2, 3, &held));
	assert_false(log_throttle_burst(&t, 0, 1000 + LOG_THROTTLE_MS + 3, 3, &held));
	assert_true(log_throttle_due(&t, 0, UINT64_MAX, &held));
	assert_int_equal(held, 1);
	assert_false(log_throttle_due(&t, 0, UINT64_MAX, &held));
	assert_false(log_throttle_due(&t, 1, UINT64_MAX, &held));	/* never used */
	log_throttle_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(round_trip),
		cmocka_unit_test(corrupt_files),
		cmocka_unit_test(restart_keeps_refusing),
		cmocka_unit_test(failed_save_removes_stale_state),
		cmocka_unit_test(journal),
		cmocka_unit_test(lost_state_is_not_forgotten_twice),
		cmocka_unit_test(window_grown_across_restart),
		cmocka_unit_test(widest_line_loads),
		cmocka_unit_test(forgotten_after_two_windows),
		cmocka_unit_test(log_once_a_minute),
		cmocka_unit_test(log_burst_a_minute),
	};

	if (!crypto_init())
		return 1;
	return cmocka_run_group_tests(tests, setup, NULL);
}
