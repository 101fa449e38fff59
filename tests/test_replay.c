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
	assert_true(replay_write(&t, mem));
	fclose(mem);
	/* bob has no history: one key line */
	assert_non_null(strstr(buf, "end 1\n"));

	assert_true(replay_init(&u, &cfg, 4));
	mem = fmemopen(buf, len, "r");
	assert_true(replay_parse(&u, mem, BOOT + 2 * WINDOW_MS, err, sizeof(err)));
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
	assert_true(replay_parse(&t, mem, BOOT, err, sizeof(err)));
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
		assert_false(replay_parse(&t, mem, BOOT, err, sizeof(err)));
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
	assert_int_equal(replay_file_load(f, &v.replay, BOOT, err, sizeof(err)),
			 REPLAY_MISSING);
	t.wall_ms += 100000;	/* up for 100 s */
	t.boot_ms += 100000;
	make(ahead, t.wall_ms + 20000);
	k = packet(ahead);
	assert_int_equal(knock_verify(&v, &k, &t, &d), KNOCK_OK);
	assert_true(replay_file_record(f, &v.replay, err, sizeof(err)));
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
	assert_int_equal(replay_file_load(f, &v.replay, t.boot_ms + 60000, err,
					  sizeof(err)), REPLAY_LOADED);
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
	assert_true(replay_file_record(f, &t, err, sizeof(err)));
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* a directory where the new file must go: writing it whole fails */
	assert_int_equal(mkdir(tmp, 0700), 0);
	id_of(id, 2);
	assert_true(replay_accept(&t, 0, NOW + 1, id, BOOT, WINDOW_MS));
	t.overflow = true;
	assert_false(replay_file_record(f, &t, err, sizeof(err)));
	assert_non_null(strstr(err, path));
	assert_int_equal(stat(path, &st), -1);
	rmdir(tmp);
	/* the next record writes it whole again */
	assert_true(replay_file_record(f, &t, err, sizeof(err)));
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
	assert_true(replay_file_rewrite(f, &t, err, sizeof(err)));
	for (int i = 0; i < 3; i++) {
		id_of(id, i);
		assert_true(replay_accept(&t, 1, NOW + (uint64_t)i, id, BOOT, WINDOW_MS));
	}
	assert_true(replay_file_record(f, &t, err, sizeof(err)));
	replay_file_sync(f);
	assert_true(replay_init(&u, &cfg, 64));
	assert_int_equal(replay_file_load(f, &u, BOOT, err, sizeof(err)), REPLAY_LOADED);
	assert_int_equal(u.keys[1].n_seen, 3);
	replay_free(&u);

	/* cut short by a crash: ignored */
	key_to_base64(key, bob.pub);
	out = fopen(path, "a");
	fprintf(out, "+ %s 1800000000099:0011", key);
	fclose(out);
	assert_true(replay_init(&u, &cfg, 64));
	assert_int_equal(replay_file_load(f, &u, BOOT, err, sizeof(err)), REPLAY_LOADED);
	assert_int_equal(u.keys[1].n_seen, 3);
	replay_free(&u);
	/* a whole line that is no journal line: corrupt */
	out = fopen(path, "a");
	fprintf(out, "\n+ junk\n");
	fclose(out);
	assert_true(replay_init(&u, &cfg, 64));
	assert_int_equal(replay_file_load(f, &u, BOOT, err, sizeof(err)), REPLAY_CORRUPT);
	assert_int_equal(u.keys[1].n_seen, 0);
	replay_free(&u);

	/* 4,100 knocks later the journal is folded into the file */
	assert_true(replay_file_rewrite(f, &t, err, sizeof(err)));
	for (int i = 0; i < 4100; i++) {
		id_of(id, i % 200);
		id[1] = (uint8_t)(i >> 8);
		assert_true(replay_accept(&t, 0, NOW + 10 + (uint64_t)i, id, BOOT, WINDOW_MS));
		if (t.n_fresh == REPLAY_FRESH_MAX)
			assert_true(replay_file_record(f, &t, err, sizeof(err)));
	}
	assert_true(replay_file_record(f, &t, err, sizeof(err)));
	assert_int_equal(stat(path, &st), 0);
	assert_true(st.st_size > 4096 * 60);
	assert_true(replay_file_compact(f, &t, err, sizeof(err)));
	assert_int_equal(stat(path, &st), 0);
	assert_true(st.st_size < 8192);		/* two keys' lines */
	assert_true(replay_init(&u, &cfg, 64));
	assert_int_equal(replay_file_load(f, &u, BOOT, err, sizeof(err)), REPLAY_LOADED);
	assert_int_equal(u.keys[0].n_seen, 64);
	assert_int_equal(u.keys[0].floor_ms, t.keys[0].floor_ms);
	replay_free(&u);
	replay_file_close(f);
	replay_free(&t);
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
		cmocka_unit_test(forgotten_after_two_windows),
		cmocka_unit_test(log_once_a_minute),
		cmocka_unit_test(log_burst_a_minute),
	};

	if (!crypto_init())
		return 1;
	return cmocka_run_group_tests(tests, setup, NULL);
}
