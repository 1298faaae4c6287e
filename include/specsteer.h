/* specsteer C API: the device side of SpecSteer as a C library.
 *
 * An edge holds the small model (SLM+) and reaches the cloud (the LLM and
 * SLM-) over the network (`specsteer cloud serve`), or runs the cloud in the
 * same process when given the LLM too. Handles are opaque; every function
 * that can fail returns NULL or non-zero and, when `error` is not NULL, sets
 * *error to a message the caller frees with specsteer_string_free.
 * Thread safety: one generation per edge at a time; specsteer_edge_cancel
 * may be called from any thread. */
#ifndef SPECSTEER_H
#define SPECSTEER_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define SPECSTEER_API __attribute__((visibility("default")))
#else
#define SPECSTEER_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef struct specsteer_edge specsteer_edge;
typedef struct specsteer_result specsteer_result;

/* Generation settings; specsteer_params_init fills the defaults. */
typedef struct specsteer_params {
  const char* method;  /* "specsteer" (default), "sd", "lightcosteer", "costeer", "slm", "slm+", "llm" */
  double lambda;       /* Eq. 7 threshold, > 0 (0.5) */
  double beta;         /* Eq. 8 steering strength, >= 0 (1.0) */
  int draft;           /* K, drafts per block (4) */
  int steer_k;         /* steering-vector entries on rejection (32) */
  int n_predict;       /* maximum new tokens, >= 1 (128) */
  uint64_t seed;       /* (0) */
  double temperature;  /* 0 = greedy (0) */
  double top_p;        /* (1.0) */
  int chat;            /* wrap prompts in the models' chat format (1) */
  int fallback;        /* 1: if the cloud fails at any point, also at the start, finish on the device;
                          0 (default): a cloud that does not open the session is an error, one lost
                          mid-generation is replaced by the device */
  int top_k;           /* sampling top-k in sampled mode, 0 = off (0) */
  double min_p;        /* min-p filter in sampled mode, 0 = off (0) */
  double repeat_penalty; /* llama.cpp's repeat penalty on the device's rows, 1 = off (1.0) */
  int repeat_last_n;   /* tokens it looks back on, 0 = off, -1 = all (64) */
  const char* system;  /* system text of the chat (the cloud sees it, like x), NULL = none */
  const char* const* stop; /* stop strings: the text ends before the first that appears (NULL = none) */
  size_t n_stop;       /* entries of `stop` */
  const char* user;    /* profile user (needs specsteer_edge_open_profile): private context = the user's
                          top-k entries, plus the user's LoRA adapters; NULL = none */
  const char* task;    /* the user's task: abstract|review|writing|lamp4|lamp5|lamp7 (needed with user) */
  int retrieve_k;      /* profile entries retrieved (4) */
  int cloud_retries;   /* sessions reopened with the decided tokens as a resume point after the cloud fails
                          mid-generation (connection lost, UNAVAILABLE, deadline, replica drained), before
                          `fallback` applies (2) */
  int draft_min;       /* drafts per block before draft_p_min may end it (1) */
  double draft_p_min;  /* adaptive draft length: a block (of up to `draft`) ends where the device model's
                          most probable next token is below this probability; 0 = fixed K (0) */
  int pipeline;        /* draft the next block while the cloud verifies this one; the tokens are the same
                          either way (1) */
} specsteer_params;

SPECSTEER_API void specsteer_params_init(specsteer_params* params);

/* Loads an edge. slm_path: the small model (GGUF). cloud: "HOST:PORT" of a
 * `specsteer cloud serve`, or NULL to run the cloud in this process from
 * llm_path (NULL with a cloud). auth_token: the cloud's bearer token or NULL.
 * n_threads: 0 = physical cores. */
SPECSTEER_API specsteer_edge* specsteer_edge_load(const char* slm_path, const char* llm_path, const char* cloud,
                                    const char* auth_token, int n_threads, char** error);
SPECSTEER_API void specsteer_edge_free(specsteer_edge* edge);

/* Opens the device's private profile store (`specsteer profile import`,
 * `profile lora`) for generations that name a params.user. Returns 0, or
 * non-zero with *error set. */
SPECSTEER_API int specsteer_edge_open_profile(specsteer_edge* edge, const char* db_path, char** error);

/* Adds a LoRA adapter (llama.cpp GGUF) of the device's SLM+ with a scale,
 * applied to every later generation (a profile user's adapters follow it).
 * It never leaves the device. Returns 0, or non-zero with *error set. */
SPECSTEER_API int specsteer_edge_add_lora(specsteer_edge* edge, const char* adapter_path, float scale, char** error);

/* Called with each piece of decided text (UTF-8, not NUL-terminated) as soon
 * as it is final; the pieces concatenate to the result's text. Return
 * non-zero to stop the generation. */
typedef int (*specsteer_token_callback)(const char* piece, size_t length, void* user_data);

/* Stops the running generation of `edge` after the tokens decided so far
 * (from any thread); the next generation starts uncancelled. */
SPECSTEER_API void specsteer_edge_cancel(specsteer_edge* edge);

/* One generation. x: the task input (the cloud sees it). private_context:
 * text only the device sees (NULL or "" for none; give it or params.user,
 * not both). params: NULL = defaults.
 * callback: NULL for none. Returns NULL on error. */
SPECSTEER_API specsteer_result* specsteer_generate(specsteer_edge* edge, const char* x, const char* private_context,
                                     const specsteer_params* params, specsteer_token_callback callback,
                                     void* user_data, char** error);

/* One message of a conversation: role "system" (or "developer"), "user" or "assistant". */
typedef struct specsteer_message {
  const char* role;
  const char* content;
} specsteer_message;

/* One reply to a conversation (OpenAI's message list): the last message must
 * be the user's; the earlier user and assistant turns go to the cloud as its
 * history, except assistant turns this edge cannot show the cloud already saw
 * in full (written on the device alone, edited, from another process): those
 * go empty (SLM+ still reads them). The private context (or params.user's
 * entries, retrieved for the first user message) joins the first user turn,
 * on the device only. With the edge's prefix cache the next turn prefills
 * only its new message. Returns NULL on error. */
SPECSTEER_API specsteer_result* specsteer_chat(specsteer_edge* edge, const specsteer_message* messages,
                                               size_t n_messages, const char* private_context,
                                               const specsteer_params* params, specsteer_token_callback callback,
                                               void* user_data, char** error);

/* The edge's prefix cache: bytes of SLM+ prompt KV kept for the next turn of
 * a conversation (per params.user; 256 MiB by default; 0 = off). Returns 0,
 * or non-zero with *error set. */
SPECSTEER_API int specsteer_edge_set_cache_ram(specsteer_edge* edge, uint64_t bytes, char** error);

typedef struct specsteer_counters {
  uint64_t n_generated, n_drafted, n_accepted, round_trips, bytes_up, bytes_down;
  double acceptance_rate;
  int cancelled;  /* stopped by the callback or specsteer_edge_cancel */
  int fallback;   /* the cloud was lost and the device finished alone */
  uint64_t resumed;       /* sessions reopened after a cloud failure (generation continued in the cloud) */
  uint64_t resume_tokens; /* decided tokens those sessions re-prefilled in the cloud */
  uint64_t cached_tokens;       /* prompt tokens the device reused from its prefix cache */
  uint64_t cloud_cached_tokens; /* tokens of x the cloud's LLM reused from its prefix cache */
  uint64_t blocks_sent_early;   /* blocks drafted while the cloud verified the one before, sent at its verdict */
  uint64_t blocks_dropped;      /* blocks drafted ahead that the verdict made useless */
} specsteer_counters;

SPECSTEER_API const char* specsteer_result_text(const specsteer_result* result); /* owned by the result */
SPECSTEER_API void specsteer_result_counters(const specsteer_result* result, specsteer_counters* out);
SPECSTEER_API void specsteer_result_free(specsteer_result* result);
SPECSTEER_API void specsteer_string_free(char* s);

#ifdef __cplusplus
}
#endif
#endif /* SPECSTEER_H */
