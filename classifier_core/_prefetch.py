"""``prefetch(array, i)``: in numba-compiled code, asks the CPU to start loading ``array[i]``'s cache
line (LLVM's ``llvm.prefetch``, a hint that never faults, the index unchecked) and goes on. Loops that
visit rows in random order (the SVM solver's passes) prefetch the next row while working on this one;
numba has no such call of its own."""

from __future__ import annotations

from llvmlite import binding, ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

# The intrinsic's name carries its pointer type: "p0" once LLVM's pointers are opaque (LLVM 15 on).
_NAME = "llvm.prefetch.p0" if binding.llvm_version_info[0] >= 15 else "llvm.prefetch.p0i8"


@intrinsic
def prefetch(typingctx, array, index):  # pragma: no cover (compiled)
    def codegen(context, builder, signature, args):
        array_type, _ = signature.args
        ary = context.make_array(array_type)(context, builder, args[0])
        pointer = cgutils.get_item_pointer(context, builder, array_type, ary, [args[1]], wraparound=False)
        byte_pointer = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        function = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [byte_pointer, i32, i32, i32]), _NAME)
        # read (0), keep in every cache level (3), data rather than instructions (1)
        builder.call(function, [builder.bitcast(pointer, byte_pointer), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(array, index), codegen
