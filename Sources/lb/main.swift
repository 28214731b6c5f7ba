print("lb")
