/// Encodes any `Encodable` into a `StatusValue` tree, without Foundation. Keys are the types'
/// coding keys, in the order they are encoded; `nil` optionals become `.null` instead of
/// vanishing, so every view sees every field.
public enum StatusEncoder {
    public static func encode<T: Encodable>(_ value: T) -> StatusValue {
        let root = Node()
        let encoder = TreeEncoder(node: root, codingPath: [])
        // The status types only hold numbers, strings and containers: nothing here throws.
        try? value.encode(to: encoder)
        return root.value
    }

    /// A place in the tree being built: a leaf, or a container its children write into.
    final class Node {
        enum Kind { case unset, leaf(StatusValue), object([(String, Node)]), array([Node]) }
        var kind = Kind.unset

        var value: StatusValue {
            switch kind {
            case .unset: .null
            case .leaf(let v): v
            case .object(let members): .object(members.map { ($0.0, $0.1.value) })
            case .array(let items): .array(items.map(\.value))
            }
        }

        func child(_ key: String) -> Node {
            let n = Node()
            if case .object(var members) = kind {
                members.append((key, n))
                kind = .object(members)
            } else {
                kind = .object([(key, n)])
            }
            return n
        }

        func append() -> Node {
            let n = Node()
            if case .array(var items) = kind { items.append(n); kind = .array(items) } else { kind = .array([n]) }
            return n
        }

        func makeObject() { if case .object = kind {} else { kind = .object([]) } }
        func makeArray() { if case .array = kind {} else { kind = .array([]) } }
    }

    struct TreeEncoder: Encoder {
        let node: Node
        let codingPath: [any CodingKey]
        var userInfo: [CodingUserInfoKey: Any] { [:] }

        func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
            node.makeObject()
            return KeyedEncodingContainer(Keyed<Key>(node: node, codingPath: codingPath))
        }
        func unkeyedContainer() -> any UnkeyedEncodingContainer {
            node.makeArray()
            return Unkeyed(node: node, codingPath: codingPath)
        }
        func singleValueContainer() -> any SingleValueEncodingContainer { Single(node: node, codingPath: codingPath) }
    }

    /// The leaf value of the primitives; nil for anything that encodes itself.
    static func leaf(_ v: Any) -> StatusValue? {
        switch v {
        case let x as Bool: .bool(x)
        case let x as String: .string(x)
        case let x as Double: .double(x)
        case let x as Float: .double(Double(x))
        case let x as Int: .int(Int64(x))
        case let x as Int8: .int(Int64(x))
        case let x as Int16: .int(Int64(x))
        case let x as Int32: .int(Int64(x))
        case let x as Int64: .int(x)
        case let x as UInt: .uint(UInt64(x))
        case let x as UInt8: .uint(UInt64(x))
        case let x as UInt16: .uint(UInt64(x))
        case let x as UInt32: .uint(UInt64(x))
        case let x as UInt64: .uint(x)
        default: nil
        }
    }

    static func put<T: Encodable>(_ value: T, into node: Node, codingPath: [any CodingKey]) throws {
        if let l = leaf(value) { node.kind = .leaf(l) } else { try value.encode(to: TreeEncoder(node: node, codingPath: codingPath)) }
    }

    struct Keyed<Key: CodingKey>: KeyedEncodingContainerProtocol {
        let node: Node
        let codingPath: [any CodingKey]

        func encodeNil(forKey key: Key) { node.child(key.stringValue).kind = .leaf(.null) }
        func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
            try StatusEncoder.put(value, into: node.child(key.stringValue), codingPath: codingPath + [key])
        }
        // a missing optional is shown as null, not left out: every view sees every field
        func encodeIfPresent<T: Encodable>(_ value: T?, forKey key: Key) throws {
            if let value { try encode(value, forKey: key) } else { encodeNil(forKey: key) }
        }
        func encodeIfPresent(_ value: Bool?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } else { encodeNil(forKey: key) } }
        func encodeIfPresent(_ value: String?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } else { encodeNil(forKey: key) } }
        func encodeIfPresent(_ value: Double?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } else { encodeNil(forKey: key) } }
        func encodeIfPresent(_ value: Float?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } else { encodeNil(forKey: key) } }
        func encodeIfPresent(_ value: Int?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } else { encodeNil(forKey: key) } }
        func encodeIfPresent(_ value: Int8?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } else { encodeNil(forKey: key) } }
        func encodeIfPresent(_ value: Int16?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } else { encodeNil(forKey: key) } }
        func encodeIfPresent(_ value: Int32?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } else { encodeNil(forKey: key) } }
        func encodeIfPresent(_ value: Int64?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } else { encodeNil(forKey: key) } }
        func encodeIfPresent(_ value: UInt?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } else { encodeNil(forKey: key) } }
        func encodeIfPresent(_ value: UInt8?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } else { encodeNil(forKey: key) } }
        func encodeIfPresent(_ value: UInt16?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } else { encodeNil(forKey: key) } }
        func encodeIfPresent(_ value: UInt32?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } else { encodeNil(forKey: key) } }
        func encodeIfPresent(_ value: UInt64?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } else { encodeNil(forKey: key) } }
        func nestedContainer<N: CodingKey>(keyedBy type: N.Type, forKey key: Key) -> KeyedEncodingContainer<N> {
            let n = node.child(key.stringValue)
            n.makeObject()
            return KeyedEncodingContainer(Keyed<N>(node: n, codingPath: codingPath + [key]))
        }
        func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
            let n = node.child(key.stringValue)
            n.makeArray()
            return Unkeyed(node: n, codingPath: codingPath + [key])
        }
        func superEncoder() -> any Encoder { TreeEncoder(node: node.child("super"), codingPath: codingPath) }
        func superEncoder(forKey key: Key) -> any Encoder { TreeEncoder(node: node.child(key.stringValue), codingPath: codingPath) }
    }

    struct Unkeyed: UnkeyedEncodingContainer {
        let node: Node
        let codingPath: [any CodingKey]
        var count: Int { if case .array(let a) = node.kind { a.count } else { 0 } }

        mutating func encodeNil() { node.append().kind = .leaf(.null) }
        mutating func encode<T: Encodable>(_ value: T) throws { try StatusEncoder.put(value, into: node.append(), codingPath: codingPath) }
        mutating func nestedContainer<N: CodingKey>(keyedBy type: N.Type) -> KeyedEncodingContainer<N> {
            let n = node.append()
            n.makeObject()
            return KeyedEncodingContainer(Keyed<N>(node: n, codingPath: codingPath))
        }
        mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
            let n = node.append()
            n.makeArray()
            return Unkeyed(node: n, codingPath: codingPath)
        }
        mutating func superEncoder() -> any Encoder { TreeEncoder(node: node.append(), codingPath: codingPath) }
    }

    struct Single: SingleValueEncodingContainer {
        let node: Node
        let codingPath: [any CodingKey]
        mutating func encodeNil() { node.kind = .leaf(.null) }
        mutating func encode<T: Encodable>(_ value: T) throws { try StatusEncoder.put(value, into: node, codingPath: codingPath) }
    }
}
