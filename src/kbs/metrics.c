/* The KBS's counters and their Prometheus text (GET /metrics). */
#include <stdio.h>
#include <string.h>

#include "service.h"

static const char *const ep_names[EP_COUNT] = {"auth",	"attest",  "resource",
					       "admin", "metrics", "jwks",
					       "audit", "unknown", "resource_put"};
static const double lat_bounds[KBS_LAT_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
						   0.05,   0.1,	  0.25,	  0.5,	 1.0,  2.5};

void cl_kbs_metrics_observe(struct kbs_metrics *m, int ep, int status, unsigned long long us)
{
	int cls = status / 100;
	size_t b = 0;

	if (ep < 0 || ep >= EP_COUNT)
		ep = EP_UNKNOWN;
	if (cls >= 1 && cls <= 5)
		atomic_fetch_add(&m->requests[ep][cls], 1);
	while (b < KBS_LAT_BUCKETS && (double)us / 1e6 > lat_bounds[b])
		b++;
	atomic_fetch_add(&m->lat[ep][b], 1);
	atomic_fetch_add(&m->lat_sum_us[ep], us);
}

char *cl_kbs_metrics(struct cl_kbs *k)
{
	struct cl_buf b = {0};
	char line[256];
	char *out = NULL;

#define EMIT(...)                                                                                  \
	do {                                                                                       \
		int n_ = snprintf(line, sizeof(line), __VA_ARGS__);                                \
		if (n_ < 0 || cl_buf_append(&b, line, (size_t)n_) != CL_OK)                        \
			goto fail;                                                                 \
	} while (0)

	EMIT("# HELP kbs_requests_total HTTP requests by endpoint and status class.\n"
	     "# TYPE kbs_requests_total counter\n");
	for (int e = 0; e < EP_COUNT; e++)
		for (int c = 1; c < 6; c++) {
			unsigned long long v = atomic_load(&k->m.requests[e][c]);

			if (v)
				EMIT("kbs_requests_total{endpoint=\"%s\",code=\"%dxx\"} %llu\n",
				     ep_names[e], c, v);
		}
	EMIT("# HELP kbs_attestations_total Attestations by TEE and outcome.\n"
	     "# TYPE kbs_attestations_total counter\n");
	for (int t = 0; t < KBS_N_TEES; t++)
		for (int o = 0; o < 2; o++)
			EMIT("kbs_attestations_total{tee=\"%s\",outcome=\"%s\"} %llu\n",
			     cl_kbs_tee_name(t), o ? "token" : "rejected",
			     atomic_load(&k->m.attest[t][o]));
	EMIT("# HELP kbs_resource_decisions_total Resource requests released or "
	     "denied by policy.\n"
	     "# TYPE kbs_resource_decisions_total counter\n"
	     "kbs_resource_decisions_total{decision=\"deny\"} %llu\n"
	     "kbs_resource_decisions_total{decision=\"release\"} %llu\n",
	     atomic_load(&k->m.releases[0]), atomic_load(&k->m.releases[1]));
	EMIT("# HELP kbs_request_duration_seconds Request latency by endpoint.\n"
	     "# TYPE kbs_request_duration_seconds histogram\n");
	for (int e = 0; e < EP_COUNT; e++) {
		unsigned long long cum = 0;

		for (int i = 0; i <= KBS_LAT_BUCKETS; i++) {
			cum += atomic_load(&k->m.lat[e][i]);
			if (i < KBS_LAT_BUCKETS)
				EMIT("kbs_request_duration_seconds_bucket{endpoint=\"%s\",le=\"%"
				     "g\"} "
				     "%llu\n",
				     ep_names[e], lat_bounds[i], cum);
			else
				EMIT("kbs_request_duration_seconds_bucket{endpoint=\"%s\",le=\"+"
				     "Inf\"} "
				     "%llu\n",
				     ep_names[e], cum);
		}
		EMIT("kbs_request_duration_seconds_sum{endpoint=\"%s\"} %.6f\n"
		     "kbs_request_duration_seconds_count{endpoint=\"%s\"} %llu\n",
		     ep_names[e], (double)atomic_load(&k->m.lat_sum_us[e]) / 1e6, ep_names[e], cum);
	}
#undef EMIT
	out = strdup((const char *)b.data);
fail:
	cl_buf_free(&b);
	return out;
}
