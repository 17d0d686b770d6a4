//go:build amd64 && !purego

#include "textflag.h"

// func indexEOLAVX2(b []byte) int
//
// The index of the first LF (0x0a) or NUL byte in b, or -1; len(b) >= 32.
// Modelled on internal/bytealg.IndexByte's AVX2 loop: 32 bytes per
// iteration, then one last 32-byte load ending at the end of b, which may
// overlap bytes already searched (they held no match).
TEXT ·indexEOLAVX2(SB), NOSPLIT, $0-32
	MOVQ b_base+0(FP), SI
	MOVQ b_len+8(FP), BX
	MOVQ SI, DI
	LEAQ -32(SI)(BX*1), R11 // start of the last 32 bytes
	MOVL $0x0a, AX
	MOVD AX, X0
	VPBROADCASTB X0, Y1 // LF in every byte
	VPXOR Y0, Y0, Y0    // NUL in every byte

	PCALIGN $32
loop:
	VMOVDQU (DI), Y2
	VPCMPEQB Y1, Y2, Y3
	VPCMPEQB Y0, Y2, Y4
	VPOR Y3, Y4, Y3
	VPTEST Y3, Y3
	JNZ found
	ADDQ $32, DI
	CMPQ DI, R11
	JLT loop

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

found:
	VPMOVMSKB Y3, DX
	BSFL DX, DX
	SUBQ SI, DI
	ADDQ DI, DX
	MOVQ DX, ret+24(FP)
	VZEROUPPER
	RET
