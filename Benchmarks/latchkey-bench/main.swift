import LatchkeyCloud; import AsyncHTTPClient; print("x")
