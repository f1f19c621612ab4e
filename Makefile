# Day-to-day shortcuts over scripts/ (the scripts are what CI and the README use).
.PHONY: build test demo deps clean
deps:
	./scripts/install-deps.sh
build:
	./scripts/build.sh
test:
	./scripts/test.sh
demo:
	./scripts/demo.sh
clean:
	rm -rf build out
