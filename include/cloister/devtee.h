/*
 * cloister development TEE: a platform process that plays the hardware's
 * part on machines without a TEE.
 *
 * The report and event-log formats are in devtee_report.h (the evidence
 * layer, src/evidence/devtee*.c). This header adds:
 *   - the request protocol between a workload and its platform over an
 *     inherited SOCK_SEQPACKET socket (src/attest/devtee_proto.c),
 *   - the platform itself: state directory, development root, launch
 *     measurement, sandbox and request loop (src/devtee/).
 */
#ifndef CLOISTER_DEVTEE_H
#define CLOISTER_DEVTEE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "cloister/core.h"
#include "cloister/devtee_report.h"

/* --------------------------------------------------------- launch measurement */

struct cl_devtee_launch {
	const uint8_t *program; /* the executable's bytes */
	size_t program_len;
	char *const *argv; /* argv as the program receives it, argv[0] included */
	size_t argc;
	uint8_t host_data[CL_DEVTEE_HASH_LEN]; /* SHA-384 of init-data, or zero */
	uint32_t flags;			       /* CL_DEVTEE_FLAG_* */
};

#define CL_DEVTEE_MAX_ARGS	4096
#define CL_DEVTEE_MAX_PROGRAM	((size_t)512 << 20)
#define CL_DEVTEE_MAX_INIT_DATA ((size_t)1 << 20)

/*
 * SHA-384 over a domain string, flags, host_data, the program's length and
 * bytes, argc and each argument with its length: unambiguous, so no two
 * launches share a measurement unless all of these are equal.
 */
CL_MUST_USE int cl_devtee_measure(const struct cl_devtee_launch *l,
				  uint8_t out[CL_DEVTEE_HASH_LEN]);
/*
 * The sealing key of a measurement: HKDF-SHA384(secret, salt = measurement,
 * info = "cloister devtee seal v1" 0x00 label), 32 bytes.
 */
#define CL_DEVTEE_SEAL_KEY_LEN 32
#define CL_DEVTEE_MAX_LABEL    64
CL_MUST_USE int cl_devtee_seal_key(const uint8_t *secret, size_t secret_len,
				   const uint8_t measurement[CL_DEVTEE_HASH_LEN],
				   const uint8_t *label, size_t label_len,
				   uint8_t out[CL_DEVTEE_SEAL_KEY_LEN]);

/* ----------------------------------------------------------------- protocol */

/*
 * Request:  u16 op, u16 payload length, payload   (one SEQPACKET message)
 * Response: u16 status (0, or -cl_err), u16 payload length, payload
 *
 *   REPORT   payload: 64 bytes report data        → the 512-byte report
 *   SEAL_KEY payload: label (1..64 bytes)         → 32-byte key
 *   EXTEND   payload: u32 index, 48-byte digest, event data (0..256 bytes) → empty
 *   EVENTLOG payload: empty                        → the event log
 *
 * Nothing in a request names a measurement: the platform fixed it at launch.
 */
enum cl_devtee_op {
	CL_DEVTEE_OP_REPORT = 1,
	CL_DEVTEE_OP_SEAL_KEY = 2,
	CL_DEVTEE_OP_EXTEND = 3,
	CL_DEVTEE_OP_EVENTLOG = 4,
};

#define CL_DEVTEE_MAX_MSG 65536
#define CL_DEVTEE_FD_ENV  "CLOISTER_DEVTEE_FD"

struct cl_devtee_req {
	uint16_t op;
	uint8_t report_data[CL_DEVTEE_REPORT_DATA_LEN]; /* REPORT */
	uint32_t index;					/* EXTEND */
	uint8_t digest[CL_DEVTEE_HASH_LEN];		/* EXTEND */
	const uint8_t *data; /* SEAL_KEY label or EXTEND event; points into the message */
	size_t data_len;
};

CL_MUST_USE int cl_devtee_req_encode(const struct cl_devtee_req *q, uint8_t *out, size_t cap,
				     size_t *len);
CL_MUST_USE int cl_devtee_req_parse(const uint8_t *p, size_t n, struct cl_devtee_req *out);
CL_MUST_USE int cl_devtee_resp_encode(int status, const uint8_t *payload, size_t len, uint8_t *out,
				      size_t cap, size_t *outlen);
/* *status is CL_OK or a cl_err; *payload points into p. */
CL_MUST_USE int cl_devtee_resp_parse(const uint8_t *p, size_t n, int *status,
				     const uint8_t **payload, size_t *len);

/* ----------------------------------------------------------------- platform */

/*
 * The state directory: given, or $XDG_DATA_HOME/cloister/devtee, or
 * ~/.local/share/cloister/devtee. out must hold PATH_MAX.
 */
CL_MUST_USE int cl_devtee_state_dir(const char *given, char *out, size_t cap);
/*
 * Load the development root (DIR/root.key, mode 0600, and the self-signed
 * DIR/root.pem), creating both and the sealing secret on first use. Either
 * out pointer may be NULL.
 */
CL_MUST_USE int cl_devtee_root_load(const char *dir, EVP_PKEY **key, X509 **cert);
/* The sealing secret DIR/seal.key (32 bytes); created with the root. */
CL_MUST_USE int cl_devtee_seal_secret_load(const char *dir, uint8_t out[32]);

struct cl_devtee_opts {
	const char *state_dir;	    /* NULL: default */
	const char *init_data_path; /* NULL: none */
	int debug;
};

/*
 * Measure what cl_devtee_run() would launch: argv[0] is the program (looked
 * up in PATH when it has no '/'). Reads the same bytes and init-data that
 * cl_devtee_run() would, so the result is the measurement a report carries.
 */
CL_MUST_USE int cl_devtee_measure_argv(const struct cl_devtee_opts *o, char *const argv[],
				       uint8_t out[CL_DEVTEE_HASH_LEN]);
/*
 * Launch argv in the development TEE and serve it until it exits. *status is
 * the program's exit status (128 + signal when it was killed).
 */
CL_MUST_USE int cl_devtee_run(const struct cl_devtee_opts *o, char *const argv[], int *status);

#endif
