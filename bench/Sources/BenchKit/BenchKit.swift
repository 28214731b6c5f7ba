public let benchKitVersion = 1
