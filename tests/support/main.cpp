// The test runner's entry point: GoogleTest, plus a line saying which backend
// and platform the suite is running against.
#include "support.hpp"

#include <gtest/gtest.h>

int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
#ifdef _WIN32
    std::printf("pipeslot tests: win32 backend%s\n",
                pipeslot::test::running_under_wine() ? " under Wine" : " on Windows");
#else
    std::printf("pipeslot tests: posix backend\n");
#endif
    return RUN_ALL_TESTS();
}
