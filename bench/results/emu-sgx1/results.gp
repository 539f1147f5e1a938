set terminal svg size 1000,520 dynamic font 'sans,12'
set output 'results.svg'
set title 'occ bench: median latency per inference (emulated SGX, sgx1)'
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y
set ylabel 'ms (log scale)'
set grid ytics
set key top left
set xtics rotate by -30
plot 'results.dat' using 2:xtic(1) title columnheader(2), '' using 3 title columnheader(3), '' using 4 title columnheader(4), '' using 5 title columnheader(5)
