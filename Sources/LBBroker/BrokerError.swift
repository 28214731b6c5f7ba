/// A setup or runtime error with a message for the operator (what is wrong and how to fix it).
public struct BrokerError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ message: String) { description = message }
}
