// plasma_bench.cc — the Plasma side of Scripts/bench-vs-plasma: the same rows
// as `plenum bench store`, through Plasma's native C++ client (pyarrow 11).
// Prints {"rows":[{"name":..,"kind":..,"unit":..,"value":..}, ...]}.
#include "bench_util.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

using Clock = std::chrono::steady_clock;
static double ns(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::nano>(b - a).count();
}
static double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char** argv) {
  if (argc < 5) { fprintf(stderr, "usage: plasma_bench SOCKET REPEATS OPERATIONS SCALE [ROUND [CLIENTS]] (SCALE 0: small-object rows only)\n"); return 2; }
  std::string socket = argv[1];
  int repeats = atoi(argv[2]), operations = atoi(argv[3]), scale = atoi(argv[4]);
  plasma::PlasmaClient client;
  check(client.Connect(socket, "", 0), "connect");
  struct Row { std::string name, kind, unit; double value; };
  std::vector<Row> rows;
  // Ids of round k start at k·10^6: interleaved rounds against one server
  // never collide with objects an earlier round left.
  uint32_t serial = argc > 5 ? uint32_t(atoi(argv[5])) * 1000000u : 0;
  auto next_id = [&]() { return object_id('\xBE', ++serial); };
  struct Spec { int count; int64_t size; const char* label; };
  Spec table[] = {{1000, 1 << 10, "1000x1kB"}, {500, 10 << 10, "500x10kB"}, {200, 100 << 10, "200x100kB"},
                  {100, 1 << 20, "100x1MB"}, {50, 10 << 20, "50x10MB"}, {10, 100 << 20, "10x100MB"}};
  // SCALE 0: the small-object rows only (Scripts/plasma-client-breakdown).
  for (auto& t : table) {
    if (scale == 0) break;
    int count = std::max(1, t.count / scale);
    std::vector<double> create, get_all, read;
    for (int r = 0; r < repeats; r++) {
      std::vector<plasma::ObjectID> ids;
      for (int i = 0; i < count; i++) ids.push_back(next_id());
      auto t0 = Clock::now();
      for (auto& id : ids) {
        std::shared_ptr<arrow::Buffer> buf;
        check(client.Create(id, t.size, nullptr, 0, &buf), "create");
        memset(buf->mutable_data(), 0x5A, t.size);
        check(client.Seal(id), "seal");
        check(client.Release(id), "release");
      }
      auto t1 = Clock::now();
      create.push_back(ns(t0, t1) / count);
      // Medians, as `plenum bench store` takes them: one ~100 µs get or
      // ~30 µs read is at the mercy of one wake-up. Gets 0–4 of all follow
      // each other (get all: those five, each released before the next);
      // gets 4–8 are each followed by a read of every object, one 8-byte
      // load per 64-byte line (read: those five). Reads after the first
      // re-read objects the last read touched: for objects that fit in cache
      // they measure a warm read, less whatever the client's releases and
      // get evicted between. A get after a read is not a get-all sample: a
      // server idle through a long read may be asleep and answer only once
      // woken.
      const int get_all_samples = 5, read_samples = 5;
      std::vector<plasma::ObjectBuffer> out;
      for (int k = 0; k < get_all_samples + read_samples - 1; k++) {
        out.clear();
        auto start = Clock::now();
        check(client.Get(ids, 0, &out), "get");
        auto got = Clock::now();
        if (k < get_all_samples) get_all.push_back(ns(start, got));
        if (k < get_all_samples - 1) continue;
        auto t2 = Clock::now();
        uint64_t sum = touch_lines(out);
        auto t3 = Clock::now();
        if (sum == 1) printf(" ");
        read.push_back(double(count) * t.size / (ns(t2, t3) / 1e9));
      }
      out.clear();
      check(client.Delete(ids), "delete");
    }
    rows.push_back({std::string("create+write+seal ") + t.label + " (per object)", "latency", "ns", median(create)});
    rows.push_back({std::string("get all ") + t.label, "latency", "ns", median(get_all)});
    rows.push_back({std::string("read ") + t.label, "bandwidth", "bytes/s", median(read)});
  }
  if (scale > 0) {
    std::vector<double> inl;
    std::string payload(1024, '\x5A');
    for (int r = 0; r < repeats; r++) {
      int count = std::max(1, 1000 / scale);
      std::vector<plasma::ObjectID> ids;
      for (int i = 0; i < count; i++) ids.push_back(next_id());
      auto t0 = Clock::now();
      for (auto& id : ids) check(client.CreateAndSeal(id, payload, ""), "create-and-seal");
      inl.push_back(ns(t0, Clock::now()) / count);
      check(client.Delete(ids), "delete");
    }
    rows.push_back({"create-and-seal 1000x1kB (per object)", "latency", "ns", median(inl)});
  }
  auto small = next_id();
  {
    std::shared_ptr<arrow::Buffer> buf;
    check(client.Create(small, 64, nullptr, 0, &buf), "create");
    memset(buf->mutable_data(), 1, 64);
    check(client.Seal(small), "seal");
    check(client.Release(small), "release");
  }
  std::vector<double> gr, co;
  for (int r = 0; r < repeats; r++) {
    auto t0 = Clock::now();
    for (int i = 0; i < operations; i++) {
      std::vector<plasma::ObjectBuffer> out;
      check(client.Get({small}, 0, &out), "get");
    }
    auto t1 = Clock::now();
    for (int i = 0; i < operations; i++) { bool has; check(client.Contains(small, &has), "contains"); }
    auto t2 = Clock::now();
    gr.push_back(operations / (ns(t0, t1) / 1e9));
    co.push_back(operations / (ns(t1, t2) / 1e9));
  }
  rows.push_back({"get+release 64B", "throughput", "ops/s", median(gr)});
  rows.push_back({"contains", "throughput", "ops/s", median(co)});
  // Many clients: CLIENTS processes, each its own connection, get+release of
  // one 64-byte object OPERATIONS times from a common start instant;
  // ops/s = all operations / (last end - start). As `plenum bench store`.
  int clients = argc > 6 ? atoi(argv[6]) : 0;
  if (clients > 0) {
    std::vector<double> rates;
    for (int r = 0; r < repeats; r++) {
      auto start = Clock::now() + std::chrono::milliseconds(300 + 60 * clients);
      int fds[2];
      if (pipe(fds) != 0) { perror("pipe"); return 1; }
      fflush(stdout);
      for (int k = 0; k < clients; k++) {
        if (fork() == 0) {
          close(fds[0]);
          plasma::PlasmaClient mine;
          check(mine.Connect(socket, "", 0), "connect");
          while (Clock::now() < start) usleep(1000);
          for (int i = 0; i < operations; i++) {
            std::vector<plasma::ObjectBuffer> out;
            check(mine.Get({small}, 0, &out), "get");
          }
          bool has;
          check(mine.Contains(small, &has), "contains");
          double end = ns(start, Clock::now());
          if (write(fds[1], &end, sizeof end) != sizeof end) _exit(1);
          _exit(0);
        }
      }
      close(fds[1]);
      double last = 0, end;
      int got = 0;
      while (read(fds[0], &end, sizeof end) == sizeof end) { last = std::max(last, end); got++; }
      close(fds[0]);
      while (wait(nullptr) > 0) {}
      if (got != clients) { fprintf(stderr, "plasma many-client: %d of %d clients finished\n", got, clients); return 1; }
      rates.push_back(double(clients) * operations / (last / 1e9));
    }
    rows.push_back({"get+release 64B, " + std::to_string(clients) + " clients", "throughput", "ops/s", median(rates)});
  }
  printf("{\"rows\":[");
  for (size_t i = 0; i < rows.size(); i++)
    printf("%s{\"name\":\"%s\",\"kind\":\"%s\",\"unit\":\"%s\",\"value\":%.3f}", i ? "," : "", rows[i].name.c_str(),
           rows[i].kind.c_str(), rows[i].unit.c_str(), rows[i].value);
  printf("]}\n");
  return 0;
}
