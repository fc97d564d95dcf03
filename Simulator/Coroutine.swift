import CPlenumShim

/// A stackful coroutine running one simulated node's program on its own
/// stack, on the simulator's single thread (SPEC.md §7.2). Switching is
/// explicit, so a seeded schedule replays exactly.
final class Coroutine {
    let handle: OpaquePointer
    private let box: Box

    final class Box {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    /// The scheduler's own context (the thread's original stack).
    static func main() -> OpaquePointer { plenum_coro_main()! }

    init(stackBytes: Int = 1 << 20, _ body: @escaping () -> Void) {
        box = Box(body)
        let arg = Unmanaged.passUnretained(box).toOpaque()
        guard let h = plenum_coro_create(stackBytes, { raw in
            Unmanaged<Box>.fromOpaque(raw!).takeUnretainedValue().body()
        }, arg) else { fatalError("simulator: cannot map a coroutine stack") }
        handle = h
    }

    deinit { plenum_coro_destroy(handle) }

    /// Where this coroutine goes, for good, when its body returns.
    func exit(to next: OpaquePointer) { plenum_coro_exit_to(handle, next) }

    static func switchTo(from: OpaquePointer, to: OpaquePointer) { plenum_coro_switch(from, to) }
}
