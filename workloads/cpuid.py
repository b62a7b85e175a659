"""The CPU a process is shown, read with the CPUID instruction from inside it (x86-64 Linux).

Run as a script under valgrind (``valgrind --tool=none python -S workloads/cpuid.py``) it prints the CPU
valgrind presents to the programs it runs: not the host's, but one of a few fixed models chosen by the host's
feature set (with AVX2, an Intel Core i7-4910MQ on an Intel and on an AMD host alike), which is what the
libraries inside a counted process dispatch on. Standard library only, so that the probe starts in a second.
"""

from __future__ import annotations

import ctypes
import json
import mmap
import struct
import sys

# cpuid(leaf, subleaf, uint32 out[4]): push rbx; mov eax, edi; mov ecx, esi; mov r8, rdx; cpuid;
# mov [r8], eax; mov [r8+4], ebx; mov [r8+8], ecx; mov [r8+12], edx; pop rbx; ret
_CODE = bytes.fromhex("53 89f8 89f1 4989d0 0fa2 418900 41895804 41894808 4189500c 5b c3".replace(" ", ""))


def presented_cpu() -> dict:
    """{"vendor", "brand", "signature", "features"} of the CPU this process sees. The signature is leaf 1's
    family, model and stepping; the features are leaf 1's ECX/EDX and leaf 7's EBX/ECX/EDX (the instruction
    sets a library can dispatch on); the APIC id, which names the core the probe ran on, is left out."""
    page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    page.write(_CODE)
    call = ctypes.CFUNCTYPE(None, ctypes.c_uint32, ctypes.c_uint32, ctypes.POINTER(ctypes.c_uint32 * 4))(
        ctypes.addressof(ctypes.c_char.from_buffer(page)))

    def cpuid(leaf: int, subleaf: int = 0) -> tuple[int, int, int, int]:
        out = (ctypes.c_uint32 * 4)()
        call(leaf, subleaf, ctypes.byref(out))
        return tuple(out)

    max_leaf, ebx, ecx, edx = cpuid(0)
    vendor = struct.pack("<III", ebx, edx, ecx).decode("ascii", "replace")
    brand = b""
    if cpuid(0x80000000)[0] >= 0x80000004:
        brand = b"".join(struct.pack("<IIII", *cpuid(0x80000002 + i)) for i in range(3))
    signature, _, f1_ecx, f1_edx = cpuid(1)
    leaf7 = cpuid(7) if max_leaf >= 7 else (0, 0, 0, 0)
    return {"vendor": vendor, "brand": brand.split(b"\0")[0].decode("ascii", "replace").strip(),
            "signature": f"{signature:#x}",
            "features": " ".join(f"{v:08x}" for v in (f1_ecx, f1_edx, *leaf7[1:]))}


if __name__ == "__main__":
    json.dump(presented_cpu(), sys.stdout)
    print()
