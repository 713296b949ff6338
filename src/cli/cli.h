#ifndef CLOISTER_CLI_H
#define CLOISTER_CLI_H

#include <stddef.h>
#include <stdio.h>

#define CLOISTER_VERSION "0.1.0"

/* Exit codes shared by every command. */
enum { EXIT_VERIFIED = 0, EXIT_REJECTED = 1, EXIT_USAGE = 2 };

/* A subcommand of a command with several ("kbs serve", "tpm eventlog"...). */
struct cli_sub {
	const char *name;
	int (*fn)(int argc, char **argv);
};

/*
 * Run argv[1] from subs with argv shifted by one; --help/-h prints usage;
 * a missing or unknown subcommand prints usage to stderr and gives EXIT_USAGE.
 */
int cli_dispatch(const char *cmd, int argc, char **argv, const struct cli_sub *subs, size_t n,
		 void (*usage)(FILE *));

int cmd_verify(int argc, char **argv);
int cmd_ear(int argc, char **argv);
int cmd_version(int argc, char **argv);
int cmd_tpm(int argc, char **argv);
int cmd_kbs(int argc, char **argv);
int cmd_agent_get_resource(int argc, char **argv);
int cmd_devtee(int argc, char **argv);
int cmd_agent(int argc, char **argv);
int cmd_ratls_serve(int argc, char **argv);
int cmd_ratls_connect(int argc, char **argv);
int cmd_demo(int argc, char **argv);

#endif
