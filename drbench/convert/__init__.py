"""Dataset converters: LongBench, ShareGPT and mixing, all writing the benchmarker record format."""
