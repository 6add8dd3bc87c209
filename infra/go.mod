module github.com/segflow/segflow/infra

go 1.26.0
