# Records where this source tree's CMake build folder is, so the installed
# package can find build/libspecsteer.so when nothing else names a library
# (SPECSTEER_LIBRARY and the install prefix come first; see specsteer/_library.py).
import os

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPy(build_py):
    def run(self):
        super().run()
        here = os.path.dirname(os.path.abspath(__file__))
        target = os.path.join(self.build_lib, "specsteer", "_paths.py")
        with open(target, "w") as f:
            f.write("# Written at install time by setup.py.\n")
            f.write(f"BUILD_DIR = {os.path.join(os.path.dirname(here), 'build')!r}\n")


setup(cmdclass={"build_py": BuildPy})
