/* The postern CLI's subcommands: one file each, one entry in postern.c. */
#ifndef POSTERN_SUBCOMMANDS_H
#define POSTERN_SUBCOMMANDS_H

#define PROG_NAME "postern"

/* Exit statuses of every subcommand. */
enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

struct cli_options {
	const char *config_path;	/* -c FILE, or NULL for the default */
};

int genkey_main(const struct cli_options *opt, int argc, char *argv[]);
int genpsk_main(const struct cli_options *opt, int argc, char *argv[]);
int pubkey_main(const struct cli_options *opt, int argc, char *argv[]);
int knock_main(const struct cli_options *opt, int argc, char *argv[]);
int pipe_main(const struct cli_options *opt, int argc, char *argv[]);
int forward_main(const struct cli_options *opt, int argc, char *argv[]);
int socks_main(const struct cli_options *opt, int argc, char *argv[]);
int doctor_main(const struct cli_options *opt, int argc, char *argv[]);
int init_main(const struct cli_options *opt, int argc, char *argv[]);
int add_server_main(const struct cli_options *opt, int argc, char *argv[]);
int rm_server_main(const struct cli_options *opt, int argc, char *argv[]);
int ls_main(const struct cli_options *opt, int argc, char *argv[]);
int gate_main(const struct cli_options *opt, int argc, char *argv[]);

#endif
