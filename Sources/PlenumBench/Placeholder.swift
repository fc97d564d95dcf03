public enum PlenumBenchPlaceholder {}
