#ifndef CLOISTER_ENDORSE_ROOTS_H
#define CLOISTER_ENDORSE_ROOTS_H

extern const char cl_amd_milan_ark_pem[];
extern const char cl_amd_milan_ask_pem[];
extern const char cl_amd_milan_asvk_pem[];
extern const char cl_amd_genoa_ark_pem[];
extern const char cl_amd_genoa_ask_pem[];
extern const char cl_amd_genoa_asvk_pem[];
extern const char cl_amd_turin_ark_pem[];
extern const char cl_amd_turin_ask_pem[];
extern const char cl_amd_turin_asvk_pem[];
extern const char cl_intel_sgx_root_pem[];
extern const char cl_aws_nitro_root_pem[];

#endif
