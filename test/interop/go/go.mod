module meshless.test/interop

go 1.19
