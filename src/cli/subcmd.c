#include <stdio.h>
#include <string.h>

#include "cli.h"

int cli_dispatch(const char *cmd, int argc, char **argv, const struct cli_sub *subs, size_t n,
		 void (*usage)(FILE *))
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		if (strcmp(argv[1], subs[i].name) == 0)
			return subs[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "cloister %s: unknown subcommand '%s'\n\n", cmd, argv[1]);
	usage(stderr);
	return EXIT_USAGE;
}
