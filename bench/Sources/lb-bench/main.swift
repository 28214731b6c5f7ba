import BenchKit; import MallocInterposerSwift; print(benchKitVersion)
