"""Prints the numpy fits pinned in test/nn/poly-activation.test.ts: /usr/bin/python3 test/vectors/poly-fits.py"""
import numpy as np
from numpy.polynomial import chebyshev as C, polynomial as P
relu=lambda x: np.maximum(x,0); sig=lambda x: 1/(1+np.exp(-x))
def ls(f,d,lo,hi):
    x=np.linspace(lo,hi,1001); return np.polyfit(x,f(x),d)[::-1]
def ch(f,d,lo,hi):
    mid=(lo+hi)/2; half=(hi-lo)/2
    c=C.chebinterpolate(lambda t: f(mid+half*t), d)
    q=C.cheb2poly(c)  # in t
    # substitute t=(x-mid)/half
    p=np.zeros(1)
    for k,a in enumerate(q):
        p=P.polyadd(p, a*P.polypow([-mid/half,1/half],k))
    return p
def ms(d,lo,hi):
    s=ls(sig,d-1,lo,hi); return P.polyint(s)
for name,c in [("ls relu 2 [-5,5]",ls(relu,2,-5,5)),("ls relu 4 [-5,5]",ls(relu,4,-5,5)),("ls sigmoid 3 [-8,8]",ls(sig,3,-8,8)),("ls relu 3 [-2,6]",ls(relu,3,-2,6)),
  ("ch relu 2 [-5,5]",ch(relu,2,-5,5)),("ch sigmoid 3 [-8,8]",ch(sig,3,-8,8)),("ch relu 4 [-1,3]",ch(relu,4,-1,3)),
  ("ms 2 [-5,5]",ms(2,-5,5)),("ms 4 [-6,6]",ms(4,-6,6))]:
    print(name, repr(list(map(float,c))))
