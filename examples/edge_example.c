/* The specsteer C API in one program: load an edge, stream a generation
 * through a callback, stop one early, read the counters, free everything.
 *   edge_example SLM LLM              the cloud in this process
 *   edge_example SLM --cloud HOST:PORT a `specsteer cloud serve` (only SLM here)
 *   edge_example SLM LLM DB USER TASK  also: a generation for a profile user
 *                                      (entries and LoRA adapters from the store)
 * Exits non-zero when the streamed text differs from the result's text or a
 * check fails (the test suite runs it). */
#include <specsteer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct collected {
  char text[1 << 16];
  size_t length;
  int pieces;
  int stop_after; /* 0: never */
};

static int on_piece(const char* piece, size_t length, void* user_data) {
  struct collected* c = (struct collected*)user_data;
  if (c->length + length < sizeof c->text) {
    memcpy(c->text + c->length, piece, length);
    c->length += length;
  }
  c->pieces++;
  return c->stop_after > 0 && c->pieces >= c->stop_after; /* non-zero: stop */
}

static int fail(const char* what, char* error) {
  fprintf(stderr, "edge_example: %s: %s\n", what, error ? error : "check failed");
  specsteer_string_free(error);
  return 1;
}

int main(int argc, char** argv) {
  char* error = NULL;
  int cloud = argc == 4 && strcmp(argv[2], "--cloud") == 0;
  int with_profile = argc == 6;
  if (argc != 3 && !cloud && !with_profile) {
    fprintf(stderr, "usage: %s SLM (LLM [DB USER TASK] | --cloud HOST:PORT)\n", argv[0]);
    return 2;
  }
  specsteer_edge* edge = cloud ? specsteer_edge_load(argv[1], NULL, argv[3], NULL, 1, &error)
                               : specsteer_edge_load(argv[1], argv[2], NULL, NULL, 1, &error);
  if (!edge) return fail("load", error);

  specsteer_params params;
  specsteer_params_init(&params);
  params.n_predict = 24;
  params.seed = 7;
  const char* x = "Write a short review of the cafe on the corner.";
  const char* private_context = "I always order oat milk and I dislike loud music.";

  static struct collected full;
  specsteer_result* r = specsteer_generate(edge, x, private_context, &params, on_piece, &full, &error);
  if (!r) return fail("generate", error);
  const char* text = specsteer_result_text(r);
  if (strlen(text) != full.length || memcmp(text, full.text, full.length) != 0)
    return fail("the streamed pieces differ from the result's text", NULL);
  specsteer_counters c;
  specsteer_result_counters(r, &c);
  printf("text: %s\n", text);
  printf("generated %llu, drafted %llu, accepted %llu (%.2f), round trips %llu, bytes up %llu down %llu\n",
         (unsigned long long)c.n_generated, (unsigned long long)c.n_drafted, (unsigned long long)c.n_accepted,
         c.acceptance_rate, (unsigned long long)c.round_trips, (unsigned long long)c.bytes_up,
         (unsigned long long)c.bytes_down);
  if (c.n_generated == 0 || c.round_trips == 0 || c.cancelled) return fail("counters of the full run", NULL);

  /* The callback stops the second run after 3 pieces. */
  static struct collected part;
  part.stop_after = 3;
  specsteer_result* r2 = specsteer_generate(edge, x, private_context, &params, on_piece, &part, &error);
  if (!r2) return fail("generate (stopped)", error);
  specsteer_counters c2;
  specsteer_result_counters(r2, &c2);
  printf("stopped after %llu tokens\n", (unsigned long long)c2.n_generated);
  if (!c2.cancelled || c2.n_generated >= c.n_generated) return fail("the callback did not stop the run", NULL);

  /* Stop strings, system text and the repeat penalty: the text ends before the stop string. */
  const char* stops[] = {"."};
  params.stop = stops;
  params.n_stop = 1;
  params.system = "You write short reviews.";
  params.repeat_penalty = 1.3;
  specsteer_result* r3 = specsteer_generate(edge, x, private_context, &params, NULL, NULL, &error);
  if (!r3) return fail("generate (stop string)", error);
  if (strchr(specsteer_result_text(r3), '.')) return fail("the stop string is in the text", NULL);
  printf("with stop \".\": %s\n", specsteer_result_text(r3));
  specsteer_result_free(r3);
  params.stop = NULL;
  params.n_stop = 0;
  params.system = NULL;
  params.repeat_penalty = 1.0;

  if (with_profile) {
    /* The profile user's top-k entries (and adapters, if `profile lora` gave some) personalize the SLM+. */
    if (specsteer_edge_open_profile(edge, argv[3], &error) != 0) return fail("open profile", error);
    params.user = argv[4];
    params.task = argv[5];
    specsteer_result* rp = specsteer_generate(edge, x, NULL, &params, NULL, NULL, &error);
    if (!rp) return fail("generate (profile user)", error);
    printf("for user %s: %s\n", argv[4], specsteer_result_text(rp));
    specsteer_result_free(rp);
    params.user = "no-such-user";
    specsteer_result* unknown = specsteer_generate(edge, x, NULL, &params, NULL, NULL, &error);
    if (unknown || !error || !strstr(error, "no-such-user")) return fail("an unknown user was not refused", error);
    specsteer_string_free(error);
    error = NULL;
    params.user = NULL;
    params.task = NULL;
  }

  /* A conversation: the second turn sends the first turn's question and
   * reply as history and reuses the first turn's prompt from the edge's
   * prefix cache. */
  specsteer_message chat[3] = {{"user", x}, {"assistant", ""}, {"user", "Say that again, shorter."}};
  specsteer_result* t1 = specsteer_chat(edge, chat, 1, private_context, &params, NULL, NULL, &error);
  if (!t1) return fail("chat turn 1", error);
  chat[1].content = specsteer_result_text(t1);
  specsteer_result* t2 = specsteer_chat(edge, chat, 3, private_context, &params, NULL, NULL, &error);
  if (!t2) return fail("chat turn 2", error);
  specsteer_counters ct;
  specsteer_result_counters(t2, &ct);
  printf("turn 2: %s (prompt tokens reused on the device %llu)\n", specsteer_result_text(t2),
         (unsigned long long)ct.cached_tokens);
  if (ct.cached_tokens == 0) return fail("turn 2 reused nothing of turn 1", NULL);
  specsteer_result_free(t1);
  specsteer_result_free(t2);
  specsteer_message no_user[1] = {{"assistant", "hi"}};
  specsteer_result* bad_chat = specsteer_chat(edge, no_user, 1, NULL, &params, NULL, NULL, &error);
  if (bad_chat || !error || !strstr(error, "user message")) return fail("a chat without a user turn was accepted", error);
  specsteer_string_free(error);
  error = NULL;

  /* Invalid settings are refused with a message. */
  params.lambda = 0;
  specsteer_result* bad = specsteer_generate(edge, x, NULL, &params, NULL, NULL, &error);
  if (bad || !error || !strstr(error, "lambda")) return fail("lambda 0 was not refused", error);
  printf("refused: %s\n", error);
  specsteer_string_free(error);

  specsteer_result_free(r);
  specsteer_result_free(r2);
  specsteer_edge_free(edge);
  printf("ok\n");
  return 0;
}
