print("plenum")
