import PlenumMemory

/// Placeholder until the simulator issue lands: the simulator will provide a
/// `SharedMemory` conformance modelling per-node write-back caches.
public enum SimulatorInfo {
    public static let plugsInto = "PlenumMemory.SharedMemory"
}
