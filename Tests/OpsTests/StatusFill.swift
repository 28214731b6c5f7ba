/// Makes a value of any `Decodable` type with every field set — each optional present, each
/// list two long, each number distinct — so a test can hold every view of a type to all of its
/// fields without keeping a list of them.
enum StatusFill {
    static func make<T: Decodable>(_ type: T.Type) throws -> T {
        let state = State()
        return try T(from: FillDecoder(state: state, codingPath: []))
    }

    final class State {
        var next: UInt64 = 1
        func number() -> UInt64 { defer { next += 1 }; return next }
    }

    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int?
        init(stringValue: String) { self.stringValue = stringValue; intValue = nil }
        init(intValue: Int) { stringValue = String(intValue); self.intValue = intValue }
    }

    struct FillDecoder: Decoder {
        let state: State
        let codingPath: [any CodingKey]
        var userInfo: [CodingUserInfoKey: Any] { [:] }
        func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
            KeyedDecodingContainer(Keyed<Key>(state: state, codingPath: codingPath))
        }
        func unkeyedContainer() throws -> any UnkeyedDecodingContainer { Unkeyed(state: state, codingPath: codingPath) }
        func singleValueContainer() throws -> any SingleValueDecodingContainer { Single(state: state, codingPath: codingPath) }
    }

    /// A primitive of type T, or nil for a type that decodes itself.
    static func primitive<T>(_ type: T.Type, _ state: State, _ path: [any CodingKey]) -> T? {
        let n = state.number()
        let name = path.last?.stringValue ?? "v"
        let v: Any? = switch type {
        case is Bool.Type: n % 2 == 0
        case is String.Type: "\(name)\(n)"
        case is Double.Type: Double(n) + 0.5
        case is Int.Type: Int(n)
        case is Int32.Type: Int32(n)
        case is Int64.Type: Int64(n)
        case is UInt32.Type: UInt32(n)
        case is UInt64.Type: n
        case is UInt.Type: UInt(n)
        default: nil
        }
        return v as? T
    }

    static func value<T: Decodable>(_ type: T.Type, _ state: State, _ path: [any CodingKey]) throws -> T {
        if let p = primitive(type, state, path) { return p }
        return try T(from: FillDecoder(state: state, codingPath: path))
    }

    struct Keyed<Key: CodingKey>: KeyedDecodingContainerProtocol {
        let state: State
        let codingPath: [any CodingKey]
        /// a container keyed by names (NamedCounts) gets two of them
        var allKeys: [Key] { ["first", "second"].compactMap { Key(stringValue: $0) } }
        func contains(_ key: Key) -> Bool { true }
        func decodeNil(forKey key: Key) throws -> Bool { false }
        func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T { try StatusFill.value(type, state, codingPath + [key]) }
        func nestedContainer<N: CodingKey>(keyedBy type: N.Type, forKey key: Key) throws -> KeyedDecodingContainer<N> {
            KeyedDecodingContainer(Keyed<N>(state: state, codingPath: codingPath + [key]))
        }
        func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer { Unkeyed(state: state, codingPath: codingPath + [key]) }
        func superDecoder() throws -> any Decoder { FillDecoder(state: state, codingPath: codingPath) }
        func superDecoder(forKey key: Key) throws -> any Decoder { FillDecoder(state: state, codingPath: codingPath + [key]) }
    }

    struct Unkeyed: UnkeyedDecodingContainer {
        let state: State
        let codingPath: [any CodingKey]
        var count: Int? { 2 }
        var currentIndex = 0
        var isAtEnd: Bool { currentIndex >= 2 }
        init(state: State, codingPath: [any CodingKey]) { self.state = state; self.codingPath = codingPath }
        mutating func decodeNil() throws -> Bool { false }
        mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
            defer { currentIndex += 1 }
            return try StatusFill.value(type, state, codingPath + [AnyKey(intValue: currentIndex)])
        }
        mutating func nestedContainer<N: CodingKey>(keyedBy type: N.Type) throws -> KeyedDecodingContainer<N> {
            currentIndex += 1
            return KeyedDecodingContainer(Keyed<N>(state: state, codingPath: codingPath))
        }
        mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
            currentIndex += 1
            return Unkeyed(state: state, codingPath: codingPath)
        }
        mutating func superDecoder() throws -> any Decoder { FillDecoder(state: state, codingPath: codingPath) }
    }

    struct Single: SingleValueDecodingContainer {
        let state: State
        let codingPath: [any CodingKey]
        func decodeNil() -> Bool { false }
        func decode<T: Decodable>(_ type: T.Type) throws -> T { try StatusFill.value(type, state, codingPath) }
    }
}
