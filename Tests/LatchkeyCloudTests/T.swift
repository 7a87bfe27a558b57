import Testing; import HummingbirdTesting; import AsyncHTTPClient
