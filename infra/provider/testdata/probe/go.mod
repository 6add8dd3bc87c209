module segflow.test/probe

go 1.26.0
