/*
 * The limits serve and connect share: a command splices
 * RATLS_LIMITS_LONGOPTS(first) into its getopt_long table (four option
 * values from first on) and hands each value to ratls_limit_opt().
 */
#ifndef CLOISTER_CLI_RATLS_LIMITS_H
#define CLOISTER_CLI_RATLS_LIMITS_H

#include <getopt.h>

#include "cloister/ratls.h"

#define RATLS_LIMITS_LONGOPTS(first)                                                               \
	{"max-connections", required_argument, NULL, (first)},                                     \
		{"max-connections-per-client", required_argument, NULL, (first) + 1},              \
		{"handshake-timeout", required_argument, NULL, (first) + 2},                       \
	{                                                                                          \
		"idle-timeout", required_argument, NULL, (first) + 3                               \
	}

#define RATLS_LIMITS_HELP                                                                          \
	"  --max-connections N   open connections at most (default 1024, fewer when the\n"         \
	"                        descriptor limit cannot hold them); more are closed at once\n"    \
	"  --max-connections-per-client N\n"                                                       \
	"                        open connections from one address at most (default 128;\n"        \
	"                        0: no cap)\n"                                                     \
	"  --handshake-timeout S accept to forwarding: handshake, verification and the\n"          \
	"                        attestation exchange, one deadline (default 15)\n"                \
	"  --idle-timeout S      close a connection with no bytes either way for S s\n"            \
	"                        (default 300; 0: never)\n"

/*
 * which: the option's value minus first. 1 when it was one of the limits
 * (stored in po), 0 when not, -1 (message printed) when its value is bad.
 */
int ratls_limit_opt(int which, const char *arg, const char *cmd, struct cl_ratls_proxy_opts *po);

#endif
