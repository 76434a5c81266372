#!/usr/bin/env python3
"""Prints 'LABEL: N passed, N failed, N skipped' from the GoogleTest XML
reports that meson's gtest protocol leaves in each build directory."""
import glob
import sys
import xml.etree.ElementTree as ET

label, dirs = sys.argv[1], sys.argv[2:]
passed = failed = skipped = 0
for d in dirs:
    reports = glob.glob(f"{d}/*.xml")
    if not reports:
        failed += 1  # the test binary died before writing its report
    for report in reports:
        for case in ET.parse(report).getroot().iter("testcase"):
            if case.find("failure") is not None:
                failed += 1
            elif case.get("result") == "skipped" or case.find("skipped") is not None:
                skipped += 1
            else:
                passed += 1
print(f"{label}: {passed} passed, {failed} failed, {skipped} skipped")
