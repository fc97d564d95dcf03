// bench_util.h — what plasma_bench.cc and read_ab.cc share: failing loudly,
// object ids from a serial, and the read both time.
#pragma once
#include <plasma/client.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

static void check(const arrow::Status& s, const char* what) {
  if (!s.ok()) { fprintf(stderr, "plasma %s: %s\n", what, s.ToString().c_str()); exit(1); }
}

// A 20-byte id: `fill` bytes, then the serial big-endian in the last four.
static plasma::ObjectID object_id(char fill, uint32_t serial) {
  std::string b(20, fill);
  for (int i = 0; i < 4; i++) b[16 + i] = char((serial >> (8 * (3 - i))) & 0xff);
  return plasma::ObjectID::from_binary(b);
}

// Reads every object, one 8-byte load per 64-byte line (the read rows of
// both benchmarks, as `plenum bench store` reads); returns the sum, which
// the caller must use so the loads stay.
static uint64_t touch_lines(const std::vector<plasma::ObjectBuffer>& objects) {
  uint64_t sum = 0;
  for (auto& b : objects) {
    const uint8_t* p = b.data->data();
    for (int64_t i = 0; i + 8 <= b.data->size(); i += 64) { uint64_t v; memcpy(&v, p + i, 8); sum += v; }
  }
  return sum;
}
