import LBSys

/// Writes a message to stderr.
func printError(_ message: String) throws {
    try Sys.write(2, message + "\n")
}
