module github.com/qtool-dev/qtool

go 1.26.8
