/*
 * Nothing to run: a program that links every object of postern_proto with
 * only libgcrypt and libc beside it (common/CMakeLists.txt), so that a
 * protocol core calling host code fails to link.
 */
int main(void)
{
	return 0;
}
