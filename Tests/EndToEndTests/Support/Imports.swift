// Tool, Corpus, ScratchDirectory and TestFailure come from Tests/Support, for every test target that runs lb.
@_exported import LBTestSupport
