import ArgumentParser
import Foundation
import PlenumMemory
import PlenumRegion
import PlenumRing

struct RegionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "region", abstract: "Create and inspect shared-memory regions.",
        subcommands: [Create.self, Info.self])

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create (or format) a region: a /dev/shm or hugetlbfs file, a DAX device, a PCI BAR.")
        @Argument(help: "Path of the region (e.g. /dev/shm/plenum.region).") var path: String
        @Option(help: "Size, e.g. 64M.") var size: ByteSize
        @Option(help: "Coherence line size: 64, 128 or 256.") var lineSize = LineSize.default
        @Option(help: "Owning node id.") var owner: UInt32 = 0
        @Option(help: "Bind the pages to this NUMA node (libnuma).") var numaNode: Int?
        @Flag(help: "Format an existing file in place.") var force = false

        func run() throws {
            let r = try Region.create(at: path, size: size.bytes, lineSize: lineSize, owner: owner, numaNode: numaNode, overwrite: force)
            print("created \(r.path): \(r.size) bytes, line size \(r.lineSize), owner \(r.header.ownerNode)")
        }
    }

    struct Info: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Validate a region's header and list its segments.")
        @Argument var path: String
        @Option(help: "Size of a character device whose size sysfs does not report.") var size: ByteSize?
        @Flag var json = false

        func run() throws {
            let region = try Region.open(at: path, size: size?.bytes)
            let memory = region.memory()
            let segments = try SegmentTable.list(in: memory, header: region.header)
            if json {
                var entries: [[String: Any]] = []
                for s in segments {
                    var e: [String: Any] = ["name": s.name, "kind": s.kind.description, "offset": s.offset, "length": s.length,
                                            "producer": s.producer, "consumer": s.consumer]
                    if s.kind == .ring, let d = try? Ring.describe(at: s.offset, length: s.length, in: memory) {
                        e["slots"] = d.layout.slotCount; e["slot_size"] = d.layout.slotSize; e["max_payload"] = d.layout.maxPayload
                    }
                    entries.append(e)
                }
                let doc: [String: Any] = ["path": path, "size": region.size, "line_size": region.lineSize.bytes,
                                          "owner": region.header.ownerNode, "data_offset": region.header.dataOffset,
                                          "segments": entries, "numa": Numa.summary]
                let data = try JSONSerialization.data(withJSONObject: doc, options: [.prettyPrinted, .sortedKeys])
                print(String(decoding: data, as: UTF8.self))
                return
            }
            print("\(path): Plenum region v\(RegionLayout.version), \(region.size) bytes, line size \(region.lineSize), owner \(region.header.ownerNode == RegionLayout.poolOwner ? "pool" : String(region.header.ownerNode))")
            print("data area from offset \(region.header.dataOffset); \(Numa.summary); CPU flush: \(CPU.flushInstruction), hardware line \(CPU.hardwareLineSize)")
            for s in segments {
                var line = "  \(s.name): \(s.kind) at \(s.offset), \(s.length) bytes"
                if s.kind == .ring {
                    line += ", node \(s.producer) → node \(s.consumer)"
                    if let d = try? Ring.describe(at: s.offset, length: s.length, in: memory) {
                        line += ", \(d.layout.slotCount) slots × \(d.layout.slotSize) B (payload ≤ \(d.layout.maxPayload) B)"
                    } else { line += " (descriptor invalid)" }
                }
                print(line)
            }
        }
    }
}
