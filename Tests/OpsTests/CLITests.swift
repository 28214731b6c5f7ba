import Foundation
import Testing

@Suite struct CLITests {
    @Test func versionIsPrinted() throws {
        let scratch = try Scratch("cli")
        let (s, out, _) = try Proc.run(Ops.lb, ["--version"], in: scratch.path, label: "version")
        #expect(s == 0)
        #expect(out.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ".").count == 3, "\(out)")
    }
}
