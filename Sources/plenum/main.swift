import PlenumCLI

// The whole command line lives in PlenumCLI (shared with `plenum-grpc`).
PlenumCLI.main()
