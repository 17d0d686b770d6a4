//go:build amd64 && !purego

#include "textflag.h"

// func indexEOLAVX2(b []byte) int
//
// The index of the first LF (0x0a) or NUL byte in b, or -1; len(b) >= 32.
// Modelled on internal/bytealg.IndexByte's AVX2 loop, unrolled to 64 bytes
// per iteration (two compares per byte cost nothing more then), then 32
// bytes at a time, then one last 32-byte load ending at the end of b, which
// may overlap bytes already searched (they held no match).
TEXT ·indexEOLAVX2(SB), NOSPLIT, $0-32
	MOVQ b_base+0(FP), SI
	MOVQ b_len+8(FP), BX
	MOVQ SI, DI
	LEAQ -32(SI)(BX*1), R11 // start of the last 32 bytes
	LEAQ -64(SI)(BX*1), R12 // start of the last 64 bytes
	MOVL $0x0a, AX
	MOVD AX, X0
	VPBROADCASTB X0, Y1 // LF in every byte
	VPXOR Y0, Y0, Y0    // NUL in every byte
	CMPQ DI, R12
	JGT loop32

	PCALIGN $32
loop64:
	VMOVDQU (DI), Y2
	VMOVDQU 32(DI), Y5
	VPCMPEQB Y1, Y2, Y3
	VPCMPEQB Y0, Y2, Y4
	VPCMPEQB Y1, Y5, Y6
	VPCMPEQB Y0, Y5, Y7
	VPOR Y3, Y4, Y3
	VPOR Y6, Y7, Y6
	VPOR Y3, Y6, Y8
	VPTEST Y8, Y8
	JNZ found64
	ADDQ $64, DI
	CMPQ DI, R12
	JLE loop64
	CMPQ DI, R11
	JGE last

loop32:
	VMOVDQU (DI), Y2
	VPCMPEQB Y1, Y2, Y3
	VPCMPEQB Y0, Y2, Y4
	VPOR Y3, Y4, Y3
	VPTEST Y3, Y3
	JNZ found
	ADDQ $32, DI
	CMPQ DI, R11
	JLT loop32

last:
	MOVQ R11, DI
	VMOVDQU (DI), Y2
	VPCMPEQB Y1, Y2, Y3
	VPCMPEQB Y0, Y2, Y4
	VPOR Y3, Y4, Y3
	VPTEST Y3, Y3
	JNZ found
	VZEROUPPER
	MOVQ $-1, ret+24(FP)
	RET

found64:
	VPTEST Y3, Y3
	JNZ found
	ADDQ $32, DI
	VMOVDQU Y6, Y3

found:
	VPMOVMSKB Y3, DX
	BSFL DX, DX
	SUBQ SI, DI
	ADDQ DI, DX
	MOVQ DX, ret+24(FP)
	VZEROUPPER
	RET
