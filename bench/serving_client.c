/* A TF Serving-like client of an export through TensorFlow's C API, for bench/serving_speed.py.
 *
 * Loads a SavedModel with TF_LoadSessionFromSavedModel (tag "serve"), the path TF Serving's
 * C++ takes, after calling tensorflow::DisableXlaCompilation() as tensorflow_model_server's
 * main() does unless --xla_cpu_compilation_enabled is given (pass "xla" to skip the call).
 * Then it runs one signature by its tensor names: a string input of BATCH ids drawn from
 * IDS_FILE (one per line, in a fixed pseudo-random order), optionally an int32[BATCH] input
 * of K, and the named outputs; prints each call's wall time in milliseconds, one a line.
 *
 * Usage: serving_client EXPORT_DIR xla|stock IDS_INPUT K_INPUT|- K BATCH REPEATS IDS_FILE OUTPUT...
 * (tensor names as "op:index"; "-" for a signature without k).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tensorflow/c/c_api.h"

/* tensorflow::DisableXlaCompilation(), exported by libtensorflow_cc.so.2. */
extern void _ZN10tensorflow21DisableXlaCompilationEv(void);

static void fail(const char *what, TF_Status *status) {
  fprintf(stderr, "serving_client: %s: %s\n", what, status ? TF_Message(status) : "");
  exit(1);
}

static TF_Output output_of(TF_Graph *graph, const char *name) {
  char op[512];
  const char *colon = strrchr(name, ':');
  size_t length = colon ? (size_t)(colon - name) : strlen(name);
  if (length >= sizeof(op)) fail("tensor name too long", NULL);
  memcpy(op, name, length);
  op[length] = '\0';
  TF_Operation *operation = TF_GraphOperationByName(graph, op);
  if (!operation) {
    fprintf(stderr, "serving_client: no operation %s in the graph\n", op);
    exit(1);
  }
  TF_Output out = {operation, colon ? atoi(colon + 1) : 0};
  return out;
}

static char **read_ids(const char *path, int *count) {
  FILE *file = fopen(path, "r");
  if (!file) fail("cannot open the ids file", NULL);
  int capacity = 1024, n = 0;
  char **ids = malloc(sizeof(char *) * capacity);
  char line[4096];
  while (fgets(line, sizeof(line), file)) {
    line[strcspn(line, "\n")] = '\0';
    if (n == capacity) ids = realloc(ids, sizeof(char *) * (capacity *= 2));
    ids[n++] = strdup(line);
  }
  fclose(file);
  if (n == 0) fail("the ids file is empty", NULL);
  *count = n;
  return ids;
}

static TF_Tensor *string_batch(char **ids, int count, int batch, uint64_t *state) {
  int64_t dims[1] = {batch};
  TF_Tensor *tensor = TF_AllocateTensor(TF_STRING, dims, 1, sizeof(TF_TString) * (size_t)batch);
  TF_TString *data = (TF_TString *)TF_TensorData(tensor);
  for (int i = 0; i < batch; ++i) {
    *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
    const char *id = ids[(*state >> 33) % (uint64_t)count];
    TF_StringInit(&data[i]);
    TF_StringCopy(&data[i], id, strlen(id));
  }
  return tensor;
}

int main(int argc, char **argv) {
  if (argc < 10) {
    fprintf(stderr,
            "usage: serving_client EXPORT_DIR xla|stock IDS_INPUT K_INPUT|- K BATCH REPEATS IDS_FILE OUTPUT...\n");
    return 2;
  }
  const char *export_dir = argv[1];
  if (strcmp(argv[2], "xla") != 0) _ZN10tensorflow21DisableXlaCompilationEv();
  const char *ids_input = argv[3], *k_input = argv[4];
  int k = atoi(argv[5]), batch = atoi(argv[6]), repeats = atoi(argv[7]);
  int num_ids = 0;
  char **ids = read_ids(argv[8], &num_ids);
  int num_outputs = argc - 9;

  TF_Status *status = TF_NewStatus();
  TF_Graph *graph = TF_NewGraph();
  TF_SessionOptions *options = TF_NewSessionOptions();
  const char *tags[1] = {"serve"};
  TF_Session *session = TF_LoadSessionFromSavedModel(options, NULL, export_dir, tags, 1, graph, NULL, status);
  if (TF_GetCode(status) != TF_OK) fail("loading the SavedModel", status);

  int with_k = strcmp(k_input, "-") != 0;
  TF_Output inputs[2];
  inputs[0] = output_of(graph, ids_input);
  if (with_k) inputs[1] = output_of(graph, k_input);
  TF_Output *outputs = malloc(sizeof(TF_Output) * num_outputs);
  for (int i = 0; i < num_outputs; ++i) outputs[i] = output_of(graph, argv[9 + i]);
  TF_Tensor **values = malloc(sizeof(TF_Tensor *) * num_outputs);

  int64_t k_dims[1] = {batch};
  TF_Tensor *k_tensor = TF_AllocateTensor(TF_INT32, k_dims, 1, sizeof(int32_t) * (size_t)batch);
  int32_t *k_data = (int32_t *)TF_TensorData(k_tensor);
  for (int i = 0; i < batch; ++i) k_data[i] = k;

  /* A fixed set of request batches, built before timing (a client's serialisation is not the
     server's work). */
  enum { DISTINCT = 64 };
  TF_Tensor *batches[DISTINCT];
  uint64_t state = 12345;
  for (int b = 0; b < DISTINCT; ++b) batches[b] = string_batch(ids, num_ids, batch, &state);

  for (int r = 0; r < repeats; ++r) {
    TF_Tensor *feed[2] = {batches[r % DISTINCT], k_tensor};
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    TF_SessionRun(session, NULL, inputs, feed, with_k ? 2 : 1, outputs, values, num_outputs, NULL, 0, NULL,
                  status);
    clock_gettime(CLOCK_MONOTONIC, &end);
    if (TF_GetCode(status) != TF_OK) fail("running the signature", status);
    for (int i = 0; i < num_outputs; ++i) TF_DeleteTensor(values[i]);
    printf("%.6f\n", (end.tv_sec - start.tv_sec) * 1e3 + (end.tv_nsec - start.tv_nsec) / 1e6);
  }
  for (int b = 0; b < DISTINCT; ++b) TF_DeleteTensor(batches[b]);
  TF_DeleteTensor(k_tensor);
  TF_CloseSession(session, status);
  TF_DeleteSession(session, status);
  TF_DeleteGraph(graph);
  TF_DeleteSessionOptions(options);
  TF_DeleteStatus(status);
  return 0;
}
