// tests/main.cpp: the doctest runner of polyhead_tests. CTest runs it once per source folder.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
