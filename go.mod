module github.com/txkit/txkit

go 1.26
