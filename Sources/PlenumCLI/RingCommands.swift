import ArgumentParser
import Foundation
import PlenumBench
import PlenumMemory
import PlenumRegion
import PlenumRing

struct RingCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ring", abstract: "Create rings and move messages through them.",
        subcommands: [Create.self, Post.self, Drain.self, Corrupt.self, Exchange.self])

    struct Locate: ParsableArguments {
        @Argument(help: "Region path.") var region: String
        @Option(help: "Ring (segment) name.") var name: String

        func open(flushes: Bool = true) throws -> (Region, MappedMemory, RingLayout) {
            let r = try Region.open(at: region)
            let m = r.memory(flushes: flushes)
            return (r, m, try Ring.open(name, in: r, memory: m))
        }
    }

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a ring to a region (run by the region's owner).")
        @OptionGroup var at: Locate
        @Option(help: "Slots (a power of two).") var slots = 256
        @Option(help: "Slot size in bytes (a multiple of the line size).") var slotSize = 256
        @Option(help: "Producer node id.") var producer: UInt32 = 0
        @Option(help: "Consumer node id.") var consumer: UInt32 = 1

        func run() throws {
            let region = try Region.open(at: at.region)
            let layout = try Ring.create(in: region, name: at.name, slotCount: slots, slotSize: slotSize, producer: producer, consumer: consumer)
            print("ring \(at.name) at offset \(layout.base): \(slots) slots × \(slotSize) B, payload ≤ \(layout.maxPayload) B")
        }
    }

    struct Post: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Post messages 0..<count with pattern payloads; stops at a full ring unless --wait.")
        @OptionGroup var at: Locate
        @Option var count: UInt64 = 1
        @Option(help: "Pattern stream id the receiver checks against.") var stream: UInt64 = 1
        @Flag(help: "Wait (adaptive polling) when the ring is full instead of stopping.") var wait = false
        @Flag var json = false

        func run() throws {
            let (_, memory, layout) = try at.open()
            var producer = try RingProducer(memory: memory, layout: layout)
            let pattern = MessagePattern(stream: stream, maxLength: layout.maxPayload)
            var backoff = Backoff()
            var posted: UInt64 = 0
            loop: while posted < count {
                let id = posted
                switch try producer.post(kind: 1, requestId: id, length: pattern.length(of: id), fill: { pattern.fill($0, index: id) }) {
                case .posted: posted += 1; backoff.reset()
                case .full, .resetPending:
                    guard wait else { break loop }
                    backoff.idle()
                }
            }
            if json { print(#"{"posted":\#(posted),"requested":\#(count),"full":\#(posted < count)}"#) }
            else { print("posted \(posted) of \(count) messages\(posted < count ? " (ring full)" : "")") }
        }
    }

    struct Drain: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Take messages until `count` arrived or the timeout passes; check each against the pattern.",
            discussion: """
            Exit status: 0 when `count` messages arrived, all in order and intact, and the ring \
            reported no corruption; 2 when any was lost, duplicated, reordered, mismatched its \
            pattern, or the ring reported a corrupt slot or epoch; 3 when fewer than `count` \
            arrived before the timeout (and nothing else went wrong); 1 on an error (SPEC §6).
            """)
        @OptionGroup var at: Locate
        @Option var count: UInt64 = 1
        @Option var stream: UInt64 = 1
        @Option(help: "Give up once the ring is empty and this many milliseconds passed without reaching count.") var timeoutMs = 2000
        @Flag var json = false

        /// Exit statuses (SPEC §6).
        static let incomplete: Int32 = 3, damaged: Int32 = 2

        func validate() throws {
            guard timeoutMs >= 0 else { throw ValidationError("--timeout-ms must be ≥ 0") }
        }

        func run() throws {
            let (_, memory, layout) = try at.open()
            var consumer = RingConsumer(memory: memory, layout: layout, ackBatch: 1)
            let pattern = MessagePattern(stream: stream, maxLength: layout.maxPayload)
            var check = DeliveryCheck()
            var corruptions: [String] = []
            var backoff = Backoff()
            let (span, tooLong) = UInt64(timeoutMs).multipliedReportingOverflow(by: 1_000_000)
            let (end, past) = monotonicNanos().addingReportingOverflow(span)
            let deadline = tooLong || past ? UInt64.max : end
            // The deadline ends only a wait on an empty ring: what was posted
            // before it is taken even if this process ran late (a busy machine).
            polling: while check.received < count {
                switch consumer.poll({ m in (m.requestId, pattern.matches(m.payload, index: m.requestId)) }) {
                case .delivered(let (id, ok)): check.observe(id: id, intact: ok); backoff.reset()
                case .corrupt(let why): corruptions.append(why.description); backoff.reset()
                case .empty:
                    if monotonicNanos() >= deadline { break polling }
                    backoff.idle()
                }
            }
            consumer.flushAcknowledgements()
            let damaged = !check.clean || consumer.stats.corrupt > 0 || !corruptions.isEmpty
            let short = check.received < count
            let status: Int32 = damaged ? Self.damaged : short ? Self.incomplete : 0
            if json {
                let doc: [String: Any] = ["received": check.received, "requested": count, "lost": check.lost,
                                          "duplicated": check.duplicated, "reordered": check.reordered,
                                          "payload_mismatch": check.corrupt, "ring_corrupt": consumer.stats.corrupt,
                                          "corruptions": corruptions, "next_expected": check.nextExpected,
                                          "exit_status": Int(status)]
                print(String(decoding: try JSONSerialization.data(withJSONObject: doc, options: [.sortedKeys]), as: UTF8.self))
            } else {
                print("received \(check.received) of \(count) (lost \(check.lost), duplicated \(check.duplicated), reordered \(check.reordered), payload mismatches \(check.corrupt)); ring reported \(consumer.stats.corrupt) corrupt slot(s)")
                for c in corruptions { print("  corrupt: \(c)") }
            }
            if damaged {
                FileHandleStderr.write("ring drain: delivery check failed: lost \(check.lost), duplicated \(check.duplicated), reordered \(check.reordered), payload mismatches \(check.corrupt), corrupt slots \(consumer.stats.corrupt), corruption reports \(corruptions.count)\n")
            }
            if short {
                FileHandleStderr.write("ring drain: received \(check.received) of \(count) messages within \(timeoutMs) ms\n")
            }
            if status != 0 { throw ExitCode(status) }
        }
    }

    struct Corrupt: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Fault injection: flip one byte of the slot holding a sequence number, from a third process.")
        @OptionGroup var at: Locate
        @Option(help: "Sequence number whose slot to damage (1-based).") var sequence: UInt64
        @Option(help: "Byte offset inside the slot (32 = first payload byte; 0..<8 = the commit word).") var byte = 32

        func run() throws {
            let (_, memory, layout) = try at.open()
            guard sequence > 0, byte >= 0, byte < layout.slotSize else {
                throw ValidationError("--sequence must be ≥ 1 and --byte in 0..<\(layout.slotSize)")
            }
            let offset = layout.slotOffset(sequence: sequence) + byte
            memory.invalidate(at: offset, count: 1)
            memory.fence(.full)
            let before = memory.read(at: offset, count: 1) { $0[0] }
            memory.write(at: offset, count: 1) { $0[0] = before ^ 0xFF }
            memory.flush(at: offset, count: 1)
            memory.fence(.store)
            print("flipped byte \(byte) of the slot for sequence \(sequence) (0x\(String(before, radix: 16)) → 0x\(String(before ^ 0xFF, radix: 16)))")
        }
    }

    struct Exchange: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "One side of a two-process exchange over rings a-to-b and b-to-a (see `plenum demo`).")
        @Argument(help: "Region path (made by `plenum region create` and `plenum ring create`, or by `plenum demo`).") var region: String
        @Option(help: "a or b.") var role: PlenumBench.Exchange.Role = .a
        @Option var count: UInt64 = 100_000
        @Flag(help: "Benchmark only: skip cache-line flushes.") var noFlush = false
        @Option var timeoutSeconds: Double = 600
        @Flag var json = false

        func run() throws {
            let r = try Region.open(at: region)
            let report = try PlenumBench.Exchange.run(region: r, role: role, count: count, flushes: !noFlush,
                                                      timeoutSeconds: timeoutSeconds)
            if json {
                let e = JSONEncoder(); e.keyEncodingStrategy = .convertToSnakeCase; e.outputFormatting = .sortedKeys
                print(String(decoding: try e.encode(report), as: UTF8.self))
            } else {
                print("\(role.rawValue): sent \(report.sent), received \(report.check.received) in \(String(format: "%.2f", report.seconds)) s; lost \(report.check.lost), duplicated \(report.check.duplicated), reordered \(report.check.reordered), corrupt \(report.check.corrupt + report.ringCorrupt)")
            }
            if !report.check.clean || report.ringCorrupt > 0 { throw ExitCode(2) }
        }
    }
}

extension PlenumBench.Exchange.Role: ExpressibleByArgument {}
