#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "cli.h"

int cmd_version(int argc, char **argv)
{
	if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		printf("usage: cloister version\n\nPrint cloister's version and the library "
		       "versions it runs on.\n");
		return 0;
	}
	if (argc > 1) {
		fprintf(stderr, "usage: cloister version\n");
		return EXIT_USAGE;
	}
	printf("cloister %s (%s, jansson %s)\n", CLOISTER_VERSION, OpenSSL_version(OPENSSL_VERSION),
	       JANSSON_VERSION);
	return 0;
}
