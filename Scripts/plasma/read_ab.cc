// read_ab.cc — the Plasma side of Scripts/plasma-read-ab: one process, one
// Plasma client per server, reads both servers' objects in alternation.
//
// Usage: read_ab SOCKET_A SOCKET_B COUNT SIZE PAIRS SERIAL REGET
// Creates COUNT objects of SIZE bytes on each server through Plasma's C++
// client (written with memset, sealed, released), gets all of them, then
// reads every object PAIRS times per server, one 8-byte load per 64-byte
// line as plasma_bench's read rows do, A then B in even pairs and B then A
// in odd ones. With REGET 1, each read follows a release and a get of all
// that server's objects, as in plasma_bench; with 0 the buffers stay held.
// Object ids start at SERIAL·10^6 (a rerun against the same servers never
// collides). Deletes everything before it exits.
// Prints {"count","size","pairs","reget","a_gbps":[...],"b_gbps":[...]}.
#include "bench_util.h"

#include <chrono>

using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  if (argc != 8) { fprintf(stderr, "usage: read_ab SOCKET_A SOCKET_B COUNT SIZE PAIRS SERIAL REGET\n"); return 2; }
  int count = atoi(argv[3]), pairs = atoi(argv[5]);
  int64_t size = atoll(argv[4]);
  uint32_t serial = uint32_t(atoi(argv[6])) * 1000000u;
  bool reget = atoi(argv[7]) != 0;
  if (count < 1 || size < 64 || pairs < 1) { fprintf(stderr, "COUNT, PAIRS ≥ 1 and SIZE ≥ 64\n"); return 2; }
  plasma::PlasmaClient clients[2];
  std::vector<plasma::ObjectID> ids[2];
  std::vector<plasma::ObjectBuffer> held[2];
  for (int s = 0; s < 2; s++) {
    check(clients[s].Connect(argv[1 + s], "", 0), "connect");
    for (int i = 0; i < count; i++) {
      ids[s].push_back(object_id('\xAB', ++serial));
      std::shared_ptr<arrow::Buffer> buf;
      check(clients[s].Create(ids[s].back(), size, nullptr, 0, &buf), "create");
      memset(buf->mutable_data(), 0x5A, size);
      check(clients[s].Seal(ids[s].back()), "seal");
      check(clients[s].Release(ids[s].back()), "release");
    }
    check(clients[s].Get(ids[s], 0, &held[s]), "get");
  }
  std::vector<double> gbps[2];
  uint64_t sum = 0;
  for (int p = 0; p < pairs; p++) {
    for (int k = 0; k < 2; k++) {
      int s = p % 2 ? 1 - k : k;
      if (reget) {
        held[s].clear();   // releases every object
        check(clients[s].Get(ids[s], 0, &held[s]), "get");
      }
      auto t0 = Clock::now();
      sum += touch_lines(held[s]);
      auto t1 = Clock::now();
      gbps[s].push_back(double(count) * double(size) / std::chrono::duration<double, std::nano>(t1 - t0).count());
    }
  }
  if (sum == 1) fprintf(stderr, " ");   // keeps the loads
  for (int s = 0; s < 2; s++) {
    held[s].clear();
    check(clients[s].Delete(ids[s]), "delete");
  }
  printf("{\"count\":%d,\"size\":%lld,\"pairs\":%d,\"reget\":%s", count, (long long)size, pairs, reget ? "true" : "false");
  for (int s = 0; s < 2; s++) {
    printf(",\"%s_gbps\":[", s ? "b" : "a");
    for (size_t i = 0; i < gbps[s].size(); i++) printf("%s%.3f", i ? "," : "", gbps[s][i]);
    printf("]");
  }
  printf("}\n");
  return 0;
}
