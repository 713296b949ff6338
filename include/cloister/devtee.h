/*
 * cloister development TEE: a platform process that plays the hardware's
 * part on machines without a TEE.
 *
 * Three pieces share this header:
 *   - the report format (parsed and verified in src/evidence/devtee.c),
 *   - the request protocol between a workload and its platform over an
 *     inherited SOCK_SEQPACKET socket (src/devtee/proto.c),
 *   - the platform itself: state directory, development root, launch
 *     measurement, sandbox and request loop (src/devtee/).
 *
 * Report layout (all integers little-endian, 512 bytes, fixed):
 *
 *   0x000  8  magic "CLDEVTEE"
 *   0x008  4  version (1)
 *   0x00c  4  flags (bit 0: debug; other bits must be zero)
 *   0x010 48  measurement (SHA-384 launch measurement, cl_devtee_measure)
 *   0x040 48  host_data (SHA-384 of the init-data; zero without one)
 *   0x070 64  report_data (chosen by the workload)
 *   0x0b0 192 rtmr[4] (SHA-384 runtime measurement registers)
 *   0x170 48  signer_id (SHA-384 of the signing key's DER SubjectPublicKeyInfo)
 *   0x1a0 96  signature: ECDSA P-384 r || s (big-endian, 48 bytes each) over
 *             SHA-384 of bytes 0x000..0x19f
 *
 * Every byte before the signature is signed; nothing follows it.
 */
#ifndef CLOISTER_DEVTEE_H
#define CLOISTER_DEVTEE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "cloister/core.h"

#define CL_DEVTEE_MAGIC		  "CLDEVTEE"
#define CL_DEVTEE_MAGIC_LEN	  8
#define CL_DEVTEE_VERSION	  1u
#define CL_DEVTEE_FLAG_DEBUG	  0x1u
#define CL_DEVTEE_HASH_LEN	  48
#define CL_DEVTEE_RTMRS		  4
#define CL_DEVTEE_REPORT_DATA_LEN 64
#define CL_DEVTEE_SIGNED_LEN	  0x1a0
#define CL_DEVTEE_REPORT_LEN	  0x200

struct cl_devtee_report {
	uint32_t version;
	uint32_t flags;
	uint8_t measurement[CL_DEVTEE_HASH_LEN];
	uint8_t host_data[CL_DEVTEE_HASH_LEN];
	uint8_t report_data[CL_DEVTEE_REPORT_DATA_LEN];
	uint8_t rtmr[CL_DEVTEE_RTMRS][CL_DEVTEE_HASH_LEN];
	uint8_t signer_id[CL_DEVTEE_HASH_LEN];
	uint8_t sig_r[CL_DEVTEE_HASH_LEN];
	uint8_t sig_s[CL_DEVTEE_HASH_LEN];
	size_t trailing; /* unsigned bytes after the report, never interpreted */
};

/*
 * Parse the CL_DEVTEE_REPORT_LEN bytes of a report: magic, version, known
 * flags. Up to CL_MAX_TRAILING bytes may follow, counted in out->trailing and
 * never read; missing bytes are rejected. Checks no signature.
 */
CL_MUST_USE int cl_devtee_report_parse(const uint8_t *p, size_t n, struct cl_devtee_report *out);
/* Serialise r (signature included) into out. */
void cl_devtee_report_write(const struct cl_devtee_report *r, uint8_t out[CL_DEVTEE_REPORT_LEN]);
/* SHA-384 of key's DER SubjectPublicKeyInfo. */
CL_MUST_USE int cl_devtee_signer_id(EVP_PKEY *key, uint8_t out[CL_DEVTEE_HASH_LEN]);
/* Set r's signer_id and signature with key (EC P-384 private key), then serialise. */
CL_MUST_USE int cl_devtee_report_sign(struct cl_devtee_report *r, EVP_PKEY *key,
				      uint8_t out[CL_DEVTEE_REPORT_LEN]);

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
/* The runtime register extension: reg = SHA-384(reg || digest). */
CL_MUST_USE int cl_devtee_extend(uint8_t reg[CL_DEVTEE_HASH_LEN],
				 const uint8_t digest[CL_DEVTEE_HASH_LEN]);
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

#define CL_DEVTEE_MAX_MSG    65536
#define CL_DEVTEE_MAX_EVENT  256
#define CL_DEVTEE_MAX_EVENTS 128
#define CL_DEVTEE_FD_ENV     "CLOISTER_DEVTEE_FD"

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

/*
 * Event log: entries of u32 index, 48-byte digest, u16 length, event data.
 * Replay folds each digest into a zeroed register set.
 */
CL_MUST_USE int cl_devtee_eventlog_replay(const uint8_t *p, size_t n,
					  uint8_t rtmr[CL_DEVTEE_RTMRS][CL_DEVTEE_HASH_LEN],
					  size_t *count);

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
