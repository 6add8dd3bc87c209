module github.com/segflow/segflow/functions/qa

go 1.26.0

require github.com/segflow/segflow/shared v0.0.0

replace github.com/segflow/segflow/shared => ../../shared
