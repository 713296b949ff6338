#ifndef CLOISTER_CLI_H
#define CLOISTER_CLI_H

#define CLOISTER_VERSION "0.1.0"

/* Exit codes shared by every command. */
enum { EXIT_VERIFIED = 0, EXIT_REJECTED = 1, EXIT_USAGE = 2 };

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
