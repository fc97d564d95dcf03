#if canImport(Glibc)
import Glibc
#endif

/// A failed system call: which call, on what, the errno, and what to do.
public struct SystemCallError: Error, CustomStringConvertible, Sendable {
    public let call: String
    public let errno: Int32
    public let subject: String
    public let hint: String

    public init(_ call: String, errno: Int32, subject: String = "", hint: String = "") {
        self.call = call
        self.errno = errno
        self.subject = subject
        self.hint = hint
    }

    /// Captures the calling thread's current `errno`.
    public static func last(_ call: String, subject: String = "", hint: String = "") -> SystemCallError {
        SystemCallError(call, errno: Glibc.errno, subject: subject, hint: hint)
    }

    public var description: String {
        var text = "\(call)"
        if !subject.isEmpty { text += " \(subject)" }
        text += " failed: \(String(cString: strerror(errno))) (errno \(errno))"
        if !hint.isEmpty { text += "; \(hint)" }
        return text
    }
}
